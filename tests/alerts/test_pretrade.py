"""The pre-trade check says which rules a trade would breach and the VaR before and after; booking refuses a
trade over a hard limit unless the user's role may override, and the override is audited."""

import datetime as dt
from decimal import Decimal

import pytest
from auditlog.models import LogEntry
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.alerts import pretrade
from apps.alerts.conditions import BREACH, HARD, SOFT
from apps.alerts.models import RuleKind
from apps.alerts.selectors import client_exposures, symbol_exposures
from apps.portfolios.models import Position, Trade
from apps.portfolios.services import trade_book
from apps.risk.services import risk_what_if
from tests.factories import AlertRuleFactory, UserFactory
from tests.risk.synthetic import desk_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def desk():
    return desk_create()


@pytest.fixture
def reli(desk):
    return desk.instruments["RELI"]


def var_fractions(desk, quantity: str) -> tuple[float, float]:
    answer = risk_what_if(portfolio=desk.portfolio, symbol="RELI", side="BUY", quantity=quantity)
    return tuple(side["var"] / side["gross_exposure"] for side in (answer["before"], answer["after"]))


def gross_of(portfolio) -> float:
    return float(client_exposures(portfolios=[portfolio])[portfolio.pk].gross)


def test_the_check_gives_var_before_and_after_and_the_hard_limit_a_trade_would_breach(desk, reli):
    before, after = var_fractions(desk, "5000")
    assert after > before
    hard = round((before + after) / 2, 6)
    AlertRuleFactory(name="VaR", parameters={"figure": "var", "soft": round(before / 2, 6), "hard": hard})
    check = pretrade.trade_check(portfolio=desk.portfolio, instrument=reli, side="BUY", quantity="5000")
    assert check.var_after > check.var_before > 0 and check.es_after > check.es_before
    (breach,) = check.breaches
    assert (breach.rule, breach.level, breach.figure, breach.worsens) == ("VaR", HARD, "var", True)
    assert breach.before == pytest.approx(before) and breach.after == pytest.approx(after)
    assert breach.limit == hard and breach.utilisation > 1 and breach.blocking
    assert check.hard_breaches == [breach]
    assert Trade.objects.count() == 6  # nothing booked


def test_a_trade_within_the_levels_breaches_nothing(desk, reli):
    AlertRuleFactory(parameters={"figure": "var", "soft": 0.5, "hard": 0.9})
    check = pretrade.trade_check(portfolio=desk.portfolio, instrument=reli, side="BUY", quantity="1")
    assert check.breaches == [] and check.not_checked == []


def test_a_soft_breach_is_reported_but_never_blocks(desk, reli):
    gross = gross_of(desk.portfolio)
    AlertRuleFactory(
        name="Gross", parameters={"figure": "gross_exposure", "soft": round(gross + 1, 2), "hard": gross * 10}
    )
    check = pretrade.trade_check(portfolio=desk.portfolio, instrument=reli, side="BUY", quantity="10")
    (breach,) = check.breaches
    assert breach.level == SOFT and not breach.blocking and check.hard_breaches == []


def test_a_trade_that_reduces_a_breach_is_not_blocked(desk, reli):
    gross = gross_of(desk.portfolio)
    AlertRuleFactory(parameters={"figure": "gross_exposure", "hard": round(gross / 2, 2)})
    check = pretrade.trade_check(portfolio=desk.portfolio, instrument=reli, side="SELL", quantity="10")
    (breach,) = check.breaches
    assert breach.level == HARD and not breach.worsens and not breach.blocking
    buying = pretrade.hard_limit_breaches(portfolio=desk.portfolio, instrument=reli, side="BUY", quantity="10")
    assert [b.worsens for b in buying] == [True]


def test_client_exposure_and_symbol_concentration_are_checked_on_the_book_after_the_trade(desk, reli):
    desk.portfolio.client_reference = "CL-DESK"
    desk.portfolio.save()
    gross = gross_of(desk.portfolio)
    firm = float(symbol_exposures(currency="INR", instrument_ids=[reli.pk])[reli.pk].gross)
    close = float(desk.closes["RELI"][-1])
    AlertRuleFactory(name="Client", kind=RuleKind.CLIENT_EXPOSURE, parameters={"hard": round(gross + close * 5, 2)})
    AlertRuleFactory(name="Symbol", kind=RuleKind.SYMBOL_CONCENTRATION, parameters={"hard": round(firm + close * 5, 2)})
    assert pretrade.hard_limit_breaches(portfolio=desk.portfolio, instrument=reli, side="BUY", quantity="4") == []
    breaches = pretrade.hard_limit_breaches(portfolio=desk.portfolio, instrument=reli, side="BUY", quantity="6")
    assert sorted(b.rule for b in breaches) == ["Client", "Symbol"]
    symbol = next(b for b in breaches if b.rule == "Symbol")
    assert symbol.after == pytest.approx(firm + close * 6, rel=1e-9)


def test_velocity_and_zscore_are_reported_without_blocking(desk, reli):
    AlertRuleFactory(name="Fast", kind=RuleKind.TRADE_VELOCITY, parameters={"max_trades": 1})
    trade_book(
        portfolio=desk.portfolio,
        instrument=reli,
        side="BUY",
        quantity=Decimal("1"),
        price=Decimal("2900"),
        traded_at=timezone.now() - dt.timedelta(seconds=10),
        external_id="NOW-1",
    )
    check = pretrade.trade_check(portfolio=desk.portfolio, instrument=reli, side="BUY", quantity="1")
    (breach,) = check.breaches
    assert (breach.rule, breach.level, breach.after, breach.blocking) == ("Fast", BREACH, 2.0, False)


def test_limits_on_figures_that_need_a_full_recalculation_are_listed_as_not_checked(desk, reli):
    AlertRuleFactory(name="Vol", parameters={"figure": "volatility", "hard": 0.01})
    check = pretrade.trade_check(portfolio=desk.portfolio, instrument=reli, side="BUY", quantity="1")
    assert check.breaches == [] and check.not_checked == ["Vol: volatility needs a full recalculation"]


def test_a_bad_proposed_trade_is_refused_naming_the_field(desk, reli):
    with pytest.raises(ValidationError) as exc:
        pretrade.trade_check(portfolio=desk.portfolio, instrument=reli, side="BUY", quantity="-5")
    assert "quantity" in exc.value.message_dict


def test_hard_limit_breaches_skips_the_what_if_when_no_var_limit_applies(desk, reli, monkeypatch):
    def no_what_if(**kwargs):
        raise AssertionError("the what-if ran")

    monkeypatch.setattr("apps.risk.services.risk_what_if", no_what_if)
    AlertRuleFactory(parameters={"figure": "gross_exposure", "hard": 1e12})
    assert pretrade.hard_limit_breaches(portfolio=desk.portfolio, instrument=reli, side="BUY", quantity="1") == []


# ------------------------------------------------------------------------------ booking


@pytest.fixture
def tight_limit(desk):
    gross = gross_of(desk.portfolio)
    return AlertRuleFactory(name="Gross", parameters={"figure": "gross_exposure", "hard": round(gross + 1, 2)})


def book(desk, reli, user, *, external_id="LIVE-1", traded_at=None, **kwargs):
    return trade_book(
        portfolio=desk.portfolio,
        instrument=reli,
        side="BUY",
        quantity=Decimal("10"),
        price=Decimal("2900"),
        traded_at=traded_at or timezone.now() - dt.timedelta(minutes=1),
        external_id=external_id,
        booked_by=user,
        check_limits=True,
        **kwargs,
    )


def test_booking_refuses_a_trade_over_a_hard_limit(desk, reli, tight_limit, analyst):
    with pytest.raises(ValidationError) as exc:
        book(desk, reli, analyst)
    assert exc.value.message_dict["limits"][0].startswith("The trade would breach hard limit(s): Gross:")
    assert not Trade.objects.filter(external_id="LIVE-1").exists()
    assert Position.objects.get(instrument=reli).quantity == 70


def test_an_analyst_may_not_override_a_hard_limit(desk, reli, tight_limit, analyst):
    with pytest.raises(ValidationError, match="Your role may not override hard limits"):
        book(desk, reli, analyst, override_hard_limits=True)
    assert not Trade.objects.filter(external_id="LIVE-1").exists()


def test_an_admin_override_books_the_trade_and_is_audited(desk, reli, tight_limit, admin_user):
    result = book(desk, reli, admin_user, override_hard_limits=True)
    assert result.created
    entry = LogEntry.objects.get_for_object(result.trade).get(changes__has_key="hard_limit_override")
    assert entry.actor == admin_user
    assert entry.additional_data["hard_limit_override"][0]["rule"] == "Gross"


def test_bookings_without_the_check_are_not_refused(desk, reli, tight_limit):
    result = trade_book(
        portfolio=desk.portfolio,
        instrument=reli,
        side="BUY",
        quantity=Decimal("10"),
        price=Decimal("2900"),
        traded_at=timezone.now() - dt.timedelta(minutes=1),
        external_id="IMPORTED-1",
    )
    assert result.created


def test_sending_a_booked_trade_again_is_not_refused_by_its_own_exposure(desk, reli, admin_user):
    when = timezone.now() - dt.timedelta(minutes=1)
    first = book(desk, reli, admin_user, traded_at=when)
    AlertRuleFactory(parameters={"figure": "gross_exposure", "hard": round(gross_of(desk.portfolio) - 1, 2)})
    again = book(desk, reli, UserFactory(), traded_at=when)
    assert not again.created and again.trade == first.trade
