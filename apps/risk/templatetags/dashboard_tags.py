"""Filters for the dashboard and the stream's partials, whose event data carries times as ISO 8601 strings."""

import datetime as dt
import zoneinfo
from decimal import Decimal, InvalidOperation

from django import template
from django.utils import timezone

from apps.portfolios.templatetags.riskradar_format import MISSING, pnl

register = template.Library()


@register.filter
def as_datetime(value, user=None) -> dt.datetime | None:
    """Return an ISO 8601 string or a datetime as an aware datetime in the user's display time zone.

    Without a user (or one without a display zone), in the active time zone. None when unparsable. Format it
    inside {% localtime off %}: the date filter would otherwise convert it to the active zone, which is UTC
    where the stream renders.
    """
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if not isinstance(value, dt.datetime):
        return None
    if timezone.is_naive(value):
        value = value.replace(tzinfo=dt.UTC)
    zone_name = getattr(user, "display_timezone", None)
    if zone_name:
        try:
            return value.astimezone(zoneinfo.ZoneInfo(zone_name))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass
    return timezone.localtime(value)


@register.filter
def severity_class(severity) -> str:
    """Return the CSS class colouring a severity (severity-high ... severity-none)."""
    return f"severity-{str(severity or 'none').lower()}"


@register.filter
def signed_percent(value, places=2) -> str:
    """Format a fraction as a signed percentage: 0.0123 -> +1.23%, -0.004 -> -0.40%; a dash when missing."""
    if value is None or value == "":
        return MISSING
    try:
        number = Decimal(str(value)) * 100
    except (InvalidOperation, ValueError):
        return MISSING
    text = pnl(number, places)
    return text if text == MISSING else f"{text}%"
