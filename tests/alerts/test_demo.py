"""seed_demo sets the exposure and concentration rules to the demo desk's scale, and leaves edited rules alone."""

import pytest
from django.core.management import call_command

from apps.alerts.demo import DEMO_WEIGHT_HARD, round_up
from apps.alerts.models import AlertRule, RuleKind
from apps.alerts.pretrade import trade_check
from apps.alerts.selectors import symbol_exposures
from apps.market.models import Instrument
from apps.portfolios.models import Portfolio
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("value", "rounded"), [(0, 0), (1, 1), (1.2, 2), (2.1, 2.5), (3, 5), (7, 10), (123_456, 200_000), (2.0e9, 2.0e9)]
)
def test_levels_are_rounded_up_to_a_round_number(value, rounded):
    assert round_up(value) == rounded


def test_the_demo_desk_gets_limits_of_its_own_scale_and_can_trade(default_rules):
    rule = AlertRule.objects.get(kind=RuleKind.SYMBOL_CONCENTRATION)
    edited = AlertRule.objects.get(kind=RuleKind.CLIENT_EXPOSURE)
    edited.updated_by = UserFactory(username="risk-head")
    edited.save()
    call_command("seed_demo", "--days", "30", "--quiet")
    rule.refresh_from_db()
    largest = max(float(e.gross) for e in symbol_exposures(currency="INR").values())
    assert largest < rule.parameters["hard"] <= 2.5 * largest
    assert rule.parameters["soft"] == pytest.approx(0.8 * rule.parameters["hard"])
    edited.refresh_from_db()
    assert edited.parameters["hard"] == 1_000_000  # an Admin's edit is kept
    weight = AlertRule.objects.get(kind=RuleKind.RISK_LIMIT, parameters__figure="position_weight")
    assert weight.parameters["hard"] == DEMO_WEIGHT_HARD
    # A modest buy into a diversified book breaches no hard limit.
    portfolio = Portfolio.objects.get(code="IN-EQUITY")
    instrument = Instrument.objects.filter(asset_class="equity", currency="INR").order_by("symbol").first()
    check = trade_check(portfolio=portfolio, instrument=instrument, side="BUY", quantity=1)
    assert not [b for b in check.breaches if b.blocking], check.breaches
