"""Which models django-auditlog records; bulk paths that it does not see record their own entries."""

from auditlog.registry import auditlog


def register_models() -> None:
    from apps.accounts.models import User
    from apps.market.models import FxRate, Instrument, PriceBar
    from apps.portfolios.models import Portfolio, Position, Trade
    from apps.risk.models import RiskConfig, StressScenario

    for model in (Instrument, PriceBar, FxRate, Portfolio, Position, Trade, RiskConfig, StressScenario):
        if not auditlog.contains(model):
            auditlog.register(model)
    if not auditlog.contains(User):
        auditlog.register(User, exclude_fields=["password", "last_login"], m2m_fields={"groups"})
