"""How the alerts API answers a service's refusal: 400 for bad input, 409 for a refused workflow step, 403."""

from contextlib import contextmanager

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, serializers, status

from apps.alerts.services import WorkflowError
from riskradar.api import validation_error_detail

BAD_REQUEST = OpenApiResponse(description='Field errors naming each field, e.g. {"note": ["..."]}.')
FORBIDDEN = OpenApiResponse(description="Your role may not do this.")
NOT_FOUND = OpenApiResponse(description="No such object.")
CONFLICT = OpenApiResponse(
    description='The step is refused in the object\'s current state, naming the field, e.g. {"status": ["..."]}.'
)


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the object's current state."
    default_code = "conflict"


@contextmanager
def service_errors(rename: dict[str, str] | None = None):
    """Answer a service's WorkflowError with 409, other ValidationErrors with 400 (both naming the field as the API
    does), and PermissionDenied with 403 and the service's message."""
    try:
        yield
    except WorkflowError as exc:
        raise Conflict(validation_error_detail(exc, rename=rename)) from exc
    except DjangoValidationError as exc:
        raise serializers.ValidationError(validation_error_detail(exc, rename=rename)) from exc
    except DjangoPermissionDenied as exc:
        raise exceptions.PermissionDenied(str(exc) or None) from exc
