"""Helpers shared by every API under /api/v1: the exception handler, UTC timestamps, routing and viewset habits."""

import datetime as dt

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models, transaction
from django.utils import timezone
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import filters, serializers
from rest_framework.routers import SimpleRouter
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

ERR_NAIVE_DATETIME = "Include a time zone offset, e.g. 2024-05-02T09:15:00+05:30 or 2024-05-02T03:45:00Z."


def validation_error_detail(exc: DjangoValidationError, *, rename: dict[str, str] | None = None) -> dict:
    """Return a Django ValidationError as DRF's {"field": ["message", ...]}, renaming model fields to API names."""
    rename = rename or {}
    if not hasattr(exc, "error_dict"):
        return {api_settings.NON_FIELD_ERRORS_KEY: exc.messages}
    detail: dict[str, list[str]] = {}
    for field, messages in exc.message_dict.items():
        key = api_settings.NON_FIELD_ERRORS_KEY if field == NON_FIELD_ERRORS else rename.get(field, field)
        detail.setdefault(key, []).extend(messages)
    return detail


def exception_handler(exc, context):
    """Answer a Django ValidationError raised by a model or service with a 400 naming each field.

    Everything else keeps DRF's own format ({"detail": ...} or field errors).
    """
    if isinstance(exc, DjangoValidationError):
        exc = serializers.ValidationError(validation_error_detail(exc))
    return drf_exception_handler(exc, context)


class UtcDateTimeField(serializers.DateTimeField):
    """An ISO 8601 timestamp, written in UTC and refused on input without an explicit offset.

    Pages show times in the user's zone, but an API answer must not depend on who asks or how they
    authenticated; and a naive input time would silently be read in whatever zone happens to be active.
    """

    default_error_messages = {"naive": ERR_NAIVE_DATETIME}

    def __init__(self, **kwargs):
        kwargs.setdefault("default_timezone", dt.UTC)
        super().__init__(**kwargs)

    def enforce_timezone(self, value):
        # DRF calls this for parsed input and for output alike; stored values are always aware.
        if timezone.is_naive(value):
            self.fail("naive")
        return super().enforce_timezone(value)


class ApiModelSerializer(serializers.ModelSerializer):
    """A ModelSerializer whose timestamps are UTC (see UtcDateTimeField)."""

    serializer_field_mapping = {**serializers.ModelSerializer.serializer_field_mapping}
    serializer_field_mapping[models.DateTimeField] = UtcDateTimeField


def decimal_field(*, decimal_places: int | None = 8, **kwargs) -> serializers.DecimalField:
    """Return a read-only decimal for computed values, with room for any product of stored numbers."""
    return serializers.DecimalField(max_digits=60, decimal_places=decimal_places, read_only=True, **kwargs)


def decimal_input(**kwargs) -> serializers.DecimalField:
    """Return a decimal input that accepts a JSON number or a string and refuses NaN and infinities.

    Range and precision are left to the service, so its messages are the ones the client sees.
    """
    return serializers.DecimalField(max_digits=None, decimal_places=None, **kwargs)


# For endpoints without free-text search, so the schema does not offer a ?search= that does nothing.
FILTER_AND_ORDER = [DjangoFilterBackend, filters.OrderingFilter]


@transaction.atomic
def save_validated(instance: models.Model, data: dict) -> models.Model:
    """Apply validated API data to a model instance, run the model's full_clean() (clean() and constraints), save.

    Raises Django's ValidationError, which the exception handler answers with a 400 naming each field.
    """
    for name, value in data.items():
        setattr(instance, name, value)
    instance.full_clean()
    instance.save()
    return instance


class Router(SimpleRouter):
    """Routes without a trailing slash (/api/v1/trades/7), like the rest of /api/v1."""

    def __init__(self):
        super().__init__(trailing_slash=False)


class MethodNotAllowedFirstMixin:
    """Answer 405 to any signed-in user for a method the endpoint does not have, whatever their role.

    DRF checks permissions before it looks for the handler, so without this a Viewer asking to PUT a
    trade would hear 403 (as if an Admin could) while an Admin hears 405.
    """

    def check_permissions(self, request):
        if request.user and request.user.is_authenticated and request.method.upper() not in self.allowed_methods:
            return
        super().check_permissions(request)
