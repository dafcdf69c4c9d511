"""Which models django-auditlog records; bulk paths that it does not see record their own entries."""

from auditlog.registry import auditlog

# Alerts are recorded for their workflow only: the repeats of a condition (count, last_seen, figures) are not.
ALERT_AUDITED_FIELDS = [
    "status",
    "severity",
    "acknowledged_by",
    "acknowledged_at",
    "resolved_by",
    "resolved_at",
    "resolution_note",
    "disposition",
    "auto_resolved",
]


def register_models() -> None:
    from apps.accounts.models import User
    from apps.alerts.models import Alert, AlertRule, LimitIncrease, NotificationChannel
    from apps.market.models import FxRate, Instrument, PriceBar
    from apps.portfolios.models import Portfolio, Position, Trade
    from apps.risk.models import RiskConfig, StressScenario

    for model in (Instrument, PriceBar, FxRate, Portfolio, Position, Trade, RiskConfig, StressScenario):
        if not auditlog.contains(model):
            auditlog.register(model)
    if not auditlog.contains(AlertRule):
        auditlog.register(AlertRule, m2m_fields={"channels"})
    if not auditlog.contains(LimitIncrease):
        auditlog.register(LimitIncrease)
    if not auditlog.contains(Alert):
        auditlog.register(Alert, include_fields=ALERT_AUDITED_FIELDS)
    if not auditlog.contains(NotificationChannel):
        auditlog.register(NotificationChannel, mask_fields=["target"])
    if not auditlog.contains(User):
        auditlog.register(User, exclude_fields=["password", "last_login"], m2m_fields={"groups"})
