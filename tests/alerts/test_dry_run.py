"""A dry run replays a rule over stored history and says how many alerts it would have raised, and when."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from apps.alerts.dry_run import rule_dry_run
from apps.alerts.models import Alert, AlertRule, LimitIncreaseStatus, LimitUtilisation, RuleKind, Scope
from apps.portfolios.models import TradeSource
from apps.portfolios.services import trade_book
from tests.alerts.conftest import NOW
from tests.factories import (
    AlertRuleFactory,
    InstrumentFactory,
    LimitIncreaseFactory,
    PortfolioFactory,
    PriceBarFactory,
    RiskSnapshotFactory,
    TickFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

HOUR = dt.timedelta(hours=1)
SINCE, UNTIL = NOW - dt.timedelta(days=1), NOW + dt.timedelta(days=1)


def var_history(portfolio, values: list[int], start=NOW, step=HOUR):
    for i, var in enumerate(values):
        RiskSnapshotFactory(portfolio=portfolio, as_of=start + i * step, var=Decimal(var))


def test_a_limit_replayed_over_snapshots_counts_each_episode_once(portfolio):
    rule = AlertRuleFactory(cooldown=dt.timedelta(minutes=15))  # hard 5% of 100,000
    var_history(portfolio, [1000, 6000, 6000, 1000, 6000, 1000])
    result = rule_dry_run(rule=rule, since=SINCE, until=UNTIL)
    assert result.count == 2 and result.evaluations == 6
    first, second = result.alerts
    assert (first.first_seen, first.last_seen, first.count, first.resolved_at) == (
        NOW + HOUR,
        NOW + 2 * HOUR,
        2,
        NOW + 3 * HOUR,
    )
    assert (first.level, first.subject, first.peak) == ("hard", "ALPHA", pytest.approx(0.06))
    assert second.first_seen == NOW + 4 * HOUR
    assert result.per_day() == {NOW.date(): 2}


def test_a_value_at_the_limit_would_not_have_fired(portfolio):
    rule = AlertRuleFactory(parameters={"figure": "var", "hard": 0.05})
    var_history(portfolio, [5000, 5000])
    assert rule_dry_run(rule=rule, since=SINCE, until=UNTIL).count == 0


def test_the_cooldown_suppresses_an_episode_right_after_another(portfolio):
    rule = AlertRuleFactory(cooldown=dt.timedelta(minutes=90))
    var_history(portfolio, [6000, 1000, 6000, 1000])
    result = rule_dry_run(rule=rule, since=SINCE, until=UNTIL)
    assert (result.count, result.suppressed) == (1, 1)


def test_only_the_window_asked_for_is_replayed(portfolio):
    rule = AlertRuleFactory()
    var_history(portfolio, [6000, 1000, 6000])
    result = rule_dry_run(rule=rule, since=NOW + HOUR, until=NOW + 3 * HOUR)
    assert [a.first_seen for a in result.alerts] == [NOW + 2 * HOUR]


def test_an_unsaved_disabled_rule_can_be_replayed_and_nothing_is_written(portfolio):
    var_history(portfolio, [6000, 6000])
    rule = AlertRule(name="Try", kind=RuleKind.RISK_LIMIT, parameters={"figure": "var", "hard": 0.05}, enabled=False)
    result = rule_dry_run(rule=rule, since=SINCE, until=UNTIL)
    assert result.count == 1 and rule.pk is None
    assert not Alert.objects.exists() and not LimitUtilisation.objects.exists() and not AlertRule.objects.exists()


def test_increases_in_force_at_the_time_are_applied(portfolio):
    rule = AlertRuleFactory()
    LimitIncreaseFactory(
        rule=rule,
        new_soft=Decimal("0.07"),
        new_hard=Decimal("0.08"),
        requested_at=NOW,
        expires_at=NOW + 2 * HOUR + dt.timedelta(minutes=30),
        status=LimitIncreaseStatus.EXPIRED,
        decided_by=UserFactory(),
        decided_at=NOW + dt.timedelta(minutes=30),
    )
    var_history(portfolio, [6000, 6000, 6000, 6000])  # 6% is within the raised levels at the 2nd and 3rd
    result = rule_dry_run(rule=rule, since=SINCE, until=UNTIL)
    assert [(a.first_seen, a.level) for a in result.alerts] == [(NOW, "hard"), (NOW + 3 * HOUR, "hard")]


def test_client_exposure_replays_the_snapshots_gross_exposure(client_account, portfolio):
    rule = AlertRuleFactory(kind=RuleKind.CLIENT_EXPOSURE, parameters={"hard": 1_000_000})
    for i, gross in enumerate([900_000, 1_000_000, 1_200_000]):
        for p in (client_account, portfolio):  # the book is not a client account
            RiskSnapshotFactory(portfolio=p, as_of=NOW + i * HOUR, gross_exposure=Decimal(gross))
    result = rule_dry_run(rule=rule, since=SINCE, until=UNTIL)
    assert [(a.subject, a.first_seen) for a in result.alerts] == [("CL-1", NOW + 2 * HOUR)]


def test_symbol_concentration_adds_every_portfolio_latest_holdings(portfolio, reliance):
    other = PortfolioFactory(code="BETA")
    rule = AlertRuleFactory(kind=RuleKind.SYMBOL_CONCENTRATION, parameters={"hard": 500_000})

    def holding(value):
        return [{"key": "RELIANCE", "asset_class": "equity", "market_value": value, "weight": 1.0}]

    RiskSnapshotFactory(portfolio=portfolio, as_of=NOW - HOUR, contributions=holding(300_000))  # before the run
    RiskSnapshotFactory(portfolio=other, as_of=NOW, contributions=holding(200_000))  # 500,000: at the limit
    RiskSnapshotFactory(portfolio=other, as_of=NOW + HOUR, contributions=holding(250_000))  # 550,000
    result = rule_dry_run(rule=rule, since=NOW - dt.timedelta(minutes=1), until=UNTIL)
    assert [(a.subject, a.first_seen, a.peak) for a in result.alerts] == [("RELIANCE", NOW + HOUR, 550_000)]


def book(portfolio, instrument, n, at, price="100"):
    return trade_book(
        portfolio=portfolio,
        instrument=instrument,
        side="BUY",
        quantity=Decimal("1"),
        price=Decimal(price),
        traded_at=at,
        external_id=f"{portfolio.code}-{n}",
        source=TradeSource.IMPORT,
    )


def test_velocity_replays_the_trade_history(portfolio, reliance):
    rule = AlertRuleFactory(kind=RuleKind.TRADE_VELOCITY, parameters={"max_trades": 3, "window_seconds": 60})
    n = 0
    for burst_start, size in ((NOW, 3), (NOW + HOUR, 5)):
        for k in range(size):
            book(portfolio, reliance, n, burst_start + dt.timedelta(seconds=10 * k))
            n += 1
    result = rule_dry_run(rule=rule, since=SINCE, until=UNTIL)
    (alert,) = result.alerts
    assert alert.first_seen == NOW + HOUR + dt.timedelta(seconds=30) and alert.count == 2 and alert.peak == 5


def test_the_zscore_replays_each_trade_against_the_trades_before_it(portfolio, reliance):
    rule = AlertRuleFactory(kind=RuleKind.TRADE_ZSCORE, parameters={"threshold": 3, "min_history": 20})
    for n in range(20):
        book(portfolio, reliance, n, NOW + dt.timedelta(minutes=n), price="90" if n % 2 else "110")
    book(portfolio, reliance, 20, NOW + dt.timedelta(minutes=30), price="1000")
    book(portfolio, reliance, 21, NOW + dt.timedelta(minutes=31), price="100")
    result = rule_dry_run(rule=rule, since=SINCE, until=UNTIL)
    (alert,) = result.alerts
    assert alert.first_seen == NOW + dt.timedelta(minutes=30) and alert.resolved_at == NOW + dt.timedelta(minutes=31)


def test_price_moves_replay_the_daily_closes(reliance):
    rule = AlertRuleFactory(
        kind=RuleKind.PRICE_MOVE, parameters={"move": 0.05}, scope=Scope.INSTRUMENT, scope_instrument=reliance
    )
    start = NOW.date() - dt.timedelta(days=5)
    for i, close in enumerate(["100", "100", "106", "106", "100", "105"]):
        PriceBarFactory(instrument=reliance, date=start + dt.timedelta(days=i), close=Decimal(close))
    result = rule_dry_run(rule=rule, since=NOW - dt.timedelta(days=10), until=NOW)
    days = [a.first_seen.date() for a in result.alerts]
    assert days == [start + dt.timedelta(days=2), start + dt.timedelta(days=4)]  # +6%, then -5.7%; +5% is not beyond


def test_stale_data_replays_the_gaps_between_ticks(reliance):
    rule = AlertRuleFactory(
        kind=RuleKind.STALE_DATA,
        parameters={"max_age_seconds": 120},
        scope=Scope.INSTRUMENT,
        scope_instrument=reliance,
    )
    for seconds in (0, 60, 180, 400):  # gaps of 60, 120 (not stale) and 220 s
        TickFactory(instrument=reliance, ts=NOW + dt.timedelta(seconds=seconds))
    result = rule_dry_run(rule=rule, since=NOW, until=NOW + dt.timedelta(seconds=400))
    (alert,) = result.alerts
    assert alert.first_seen == NOW + dt.timedelta(seconds=300) and alert.resolved_at == NOW + dt.timedelta(seconds=400)


def test_anomaly_scores_cannot_be_replayed():
    rule = AlertRuleFactory(kind=RuleKind.TRADE_ANOMALY, parameters={})
    with pytest.raises(ValidationError, match="anomaly scores are not stored"):
        rule_dry_run(rule=rule, since=SINCE, until=UNTIL)


@pytest.mark.parametrize(("since", "until"), [(UNTIL, SINCE), (SINCE.replace(tzinfo=None), UNTIL)])
def test_a_bad_range_is_refused(since, until):
    with pytest.raises(ValidationError, match="since before until"):
        rule_dry_run(rule=AlertRuleFactory(), since=since, until=until)


def test_a_rule_with_bad_parameters_is_refused_naming_them():
    rule = AlertRule(name="Bad", kind=RuleKind.TRADE_VELOCITY, parameters={"max_trades": 0})
    with pytest.raises(ValidationError) as exc:
        rule_dry_run(rule=rule, since=SINCE, until=UNTIL)
    assert exc.value.message_dict["parameters"] == ["max_trades: must be at least 1."]


def test_unused_instrument_history_is_ignored(reliance):
    InstrumentFactory(symbol="TCS")
    rule = AlertRuleFactory(kind=RuleKind.PRICE_MOVE, parameters={}, scope=Scope.INSTRUMENT, scope_instrument=reliance)
    assert rule_dry_run(rule=rule, since=SINCE, until=UNTIL).count == 0
