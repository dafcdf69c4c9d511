"""Template helpers of the alert pages and the stream's alert partial (which renders without a request)."""

from django import template

from apps.alerts.models import AlertRule, AlertStatus, Disposition, RuleKind
from apps.alerts.parameters import is_fraction
from apps.alerts.selectors import alerts_open_count
from apps.portfolios.templatetags.riskradar_format import MISSING, money, percent

register = template.Library()

STATUS_BADGES = {
    AlertStatus.OPEN: "text-bg-danger",
    AlertStatus.ACKNOWLEDGED: "text-bg-warning",
    AlertStatus.RESOLVED: "text-bg-secondary",
}


@register.filter
def can(user, perm: str) -> bool:
    """Return whether the user holds the permission ("alerts.acknowledge_alert"); False without a user."""
    return bool(user is not None and getattr(user, "is_authenticated", False) and user.has_perm(perm))


@register.simple_tag
def open_alert_count() -> int:
    """Return how many alerts are open (the navigation badge)."""
    return alerts_open_count()


@register.filter
def kind_label(kind) -> str:
    """Return a rule kind's label ("Transaction velocity"), or the value itself when unknown."""
    try:
        return RuleKind(kind).label
    except ValueError:
        return str(kind or MISSING)


@register.filter
def status_badge(status) -> str:
    """Return the Bootstrap badge class of an alert status."""
    return STATUS_BADGES.get(status, "text-bg-secondary")


@register.filter
def status_label(status) -> str:
    try:
        return AlertStatus(status).label
    except ValueError:
        return str(status or MISSING)


@register.filter
def disposition_label(disposition) -> str:
    try:
        return Disposition(disposition).label
    except ValueError:
        return ""


@register.filter
def rule_level(value, rule: AlertRule) -> str:
    """Format a limit level of the rule: a percentage for fractions, else an amount (with the rule's currency)."""
    if value is None or value == "":
        return MISSING
    params = rule.parameters or {}
    if is_fraction(rule.kind, params) or params.get("figure") == "risk_score":
        if params.get("figure") == "risk_score":
            return money(value, 2)
        return percent(value, 2)
    currency = params.get("currency", "")
    return f"{money(value, 0)} {currency}".strip()


@register.filter
def utilisation_class(value) -> str:
    """Return the CSS class of a utilisation (value over its hard limit): util-ok, util-warn (80%+), util-over."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "util-none"
    if number > 1:
        return "util-over"
    return "util-warn" if number >= 0.8 else "util-ok"


@register.filter
def first_seen(row) -> object:
    """Return when an inbox row's alert was first seen (created_at for an event published before first_seen was)."""
    if not isinstance(row, dict):
        return None
    return row.get("first_seen") or row.get("created_at")
