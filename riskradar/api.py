"""Helpers shared by every API under /api/v1: the exception handler, UTC timestamps, routing and viewset habits."""

import datetime as dt

import django_filters
from django import forms
from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models, transaction
from django.utils import timezone
from django_filters.fields import IsoDateTimeField
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import filters, pagination, serializers
from rest_framework.routers import SimpleRouter
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

ERR_NAIVE_DATETIME = "Include a time zone offset, e.g. 2024-05-02T09:15:00+05:30 or 2024-05-02T03:45:00Z."
# The largest primary key (BigAutoField, a signed 64-bit integer). A larger number names no row, and SQLite
# cannot even compare one with a column in an IN list or a foreign key (OverflowError, a 500), so every input
# that names rows by id is bounded by it.
MAX_ID = 2**63 - 1


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

    Range and precision are left to the service, so its messages are the ones the client sees; a trade's numbers
    use apps.portfolios.api.serializers.trade_number_input, which runs the booking's own check as a validator.
    """
    return serializers.DecimalField(max_digits=None, decimal_places=None, **kwargs)


class NulFreeSlugRelatedField(serializers.SlugRelatedField):
    """DRF's SlugRelatedField, answering text with a NUL byte as naming nothing before it reaches a query.

    No code, symbol or username holds one, and PostgreSQL refuses one in a query with an error (a 500).
    """

    def to_internal_value(self, data):
        if isinstance(data, str) and "\x00" in data:
            self.fail("does_not_exist", slug_name=self.slug_field, value=data)
        return super().to_internal_value(data)


def id_input(**kwargs) -> serializers.IntegerField:
    """Return an input naming a row by its id: a whole number from 1 to MAX_ID, anything else a 400 naming it."""
    return serializers.IntegerField(min_value=1, max_value=MAX_ID, **kwargs)


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(django_filters.NumberFilter):
    """A query parameter naming a row by its id: a whole number from 1 to MAX_ID, anything else a 400 naming it."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)

    def get_max_validator(self):
        return None  # max_value above is the bound


class IdInFilter(django_filters.BaseInFilter, IdFilter):
    """One id or a comma-separated list of them, each as IdFilter takes it."""


class _UtcIsoDateTimeField(IsoDateTimeField):
    default_error_messages = {"overflow": "Enter a date and time that falls within years 1 to 9999 in UTC."}

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        try:
            return value.astimezone(dt.UTC)
        except OverflowError:
            raise forms.ValidationError(self.error_messages["overflow"], code="overflow") from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    """An ISO 8601 time in a query string, compared in UTC.

    Python takes offsets up to +-23:59 and PostgreSQL only up to +-15:59, so a time is converted before it
    reaches the query; one that leaves the calendar on the way (0001-01-01T00:00+05:00) is a 400 naming it.
    """

    field_class = _UtcIsoDateTimeField


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    """DRF's ?limit=&offset= pages, a limit above max_limit cut to it.

    DRF takes any limit, and one beyond what the database's 64-bit LIMIT holds was a server error.
    """

    max_limit = 10_000  # more rows than any page the desk asks for


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
