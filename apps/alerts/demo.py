"""Limits for the demo desk, so the demo shows surveillance at work rather than refusing every trade.

The default rules (migration 0002) carry the levels a new desk starts from, among them 500,000 of
firm-wide exposure to one symbol and 1,000,000 per client account. The demo desk is a simulated fund of
a few hundred million rupees, far above those, so every buy would breach a hard limit. When seed_demo
loads the desk it sets the exposure rules to levels calibrated on that desk: the hard level
DEMO_HEADROOM above today's largest exposure (rounded up to a round number), the soft level at 80% of
it, so trading is allowed and a large trade can still breach. The single-position weight limit is set
to DEMO_WEIGHT_SOFT / DEMO_WEIGHT_HARD. Rules an Admin has already edited (updated_by set) are left alone.
"""

import math

from apps.alerts.models import AlertRule, LimitFigure, RuleKind
from apps.alerts.selectors import client_exposures, symbol_exposures
from apps.portfolios.models import Portfolio
from apps.portfolios.selectors import portfolio_valuation

DEMO_HEADROOM = 1.25
DEMO_NOTE = "Calibrated for the demo desk by seed_demo: hard = 1.25 x the largest exposure when loaded."
# The demo holds specialised books (an options desk, two-position client accounts) where one position is
# most of the book: 60% / 80% lets those books show soft and hard breaches while the others trade freely.
DEMO_WEIGHT_SOFT, DEMO_WEIGHT_HARD = 0.6, 0.8
DEMO_WEIGHT_NOTE = "Set for the demo desk by seed_demo: its specialised books are concentrated by design."


def round_up(value: float) -> float:
    """Round up to 1, 2, 2.5 or 5 times a power of ten (a level a person would set)."""
    if value <= 0:
        return 0.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)


def _set_levels(rule: AlertRule, *, soft: float, hard: float, note: str) -> bool:
    if rule.updated_by_id is not None:
        return False
    rule.parameters = {**rule.parameters, "soft": soft, "hard": hard}
    rule.description = note
    rule.save(update_fields=["parameters", "description", "updated_at"])
    return True


def _calibrate(rule: AlertRule, largest: float) -> bool:
    if largest <= 0:
        return False
    hard = round_up(largest * DEMO_HEADROOM)
    return _set_levels(rule, soft=round(hard * 0.8, 6), hard=hard, note=DEMO_NOTE)


def demo_limits_calibrate() -> list[str]:
    """Set the default exposure and concentration rules to the demo desk's scale; return the rules changed."""
    portfolios = list(Portfolio.objects.filter(is_active=True))
    valuations = [portfolio_valuation(portfolio=p) for p in portfolios]
    largest_by_figure = {
        LimitFigure.GROSS_EXPOSURE: max((float(v.gross_exposure) for v in valuations), default=0.0),
        LimitFigure.NET_EXPOSURE: max((abs(float(v.market_value)) for v in valuations), default=0.0),
    }
    changed = []
    for rule in AlertRule.objects.filter(enabled=True).order_by("pk"):
        parameters = rule.parameters
        if rule.kind == RuleKind.SYMBOL_CONCENTRATION:
            exposures = symbol_exposures(currency=parameters.get("currency", "INR")).values()
            done = _calibrate(rule, max((float(e.gross) for e in exposures), default=0.0))
        elif rule.kind == RuleKind.CLIENT_EXPOSURE:
            clients = [p for p in portfolios if p.client_reference] if parameters.get("clients_only") else portfolios
            exposures = client_exposures(portfolios=clients, rule=rule).values()
            done = _calibrate(rule, max((float(e.gross) for e in exposures), default=0.0))
        elif rule.kind == RuleKind.RISK_LIMIT and parameters.get("figure") in largest_by_figure:
            done = _calibrate(rule, largest_by_figure[parameters["figure"]])
        elif rule.kind == RuleKind.RISK_LIMIT and parameters.get("figure") == LimitFigure.POSITION_WEIGHT:
            done = _set_levels(rule, soft=DEMO_WEIGHT_SOFT, hard=DEMO_WEIGHT_HARD, note=DEMO_WEIGHT_NOTE)
        else:
            done = False
        if done:
            changed.append(rule.name)
    return changed
