"""Each rule kind fires exactly above its boundary: a value equal to a limit or threshold does not fire.

Limits also record utilisation, escalate from soft to hard, resolve themselves when the value falls back,
and take approved temporary increases into account.
"""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.alerts import services
from apps.alerts.conditions import robust_zscore
from apps.alerts.models import (
    Alert,
    AlertSeverity,
    AlertStatus,
    LimitIncreaseStatus,
    LimitUtilisation,
    RuleKind,
    Scope,
)
from apps.market.models import AssetClass, FeedState
from apps.portfolios.models import Position, TradeSource
from apps.portfolios.services import trade_book
from apps.risk.models import SnapshotKind
from tests.alerts.conftest import NOW
from tests.factories import (
    AlertRuleFactory,
    FxRateFactory,
    InstrumentFactory,
    LimitIncreaseFactory,
    PortfolioFactory,
    QuoteFactory,
    RiskSnapshotFactory,
    TickFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

GROSS = Decimal("100000")


def minutes(n: float) -> dt.timedelta:
    return dt.timedelta(minutes=n)


# ------------------------------------------------------------------------------ risk limits


def snapshot_fields(figure: str, value: Decimal, *, basis: str = "fraction_of_gross") -> dict:
    """Return snapshot columns that make the figure equal to `value` exactly."""
    if figure in ("var", "es"):
        amount = value * GROSS if basis == "fraction_of_gross" else value
        return {figure: amount, "gross_exposure": GROSS}
    if figure == "volatility":
        return {"volatility": float(value)}
    if figure == "drawdown":
        return {"current_drawdown": float(value)}
    if figure == "risk_score":
        return {"risk_score": float(value)}
    if figure == "gross_exposure":
        return {"gross_exposure": value}
    if figure == "net_exposure":
        return {"market_value": -value, "gross_exposure": value}
    return {
        "contributions": [
            {"key": "RELIANCE", "asset_class": "equity", "weight": -float(value), "market_value": -1.0},
            {"key": "TCS", "asset_class": "equity", "weight": 0.01, "market_value": 1.0},
        ]
    }


LIMITS = [
    ("var", {"basis": "fraction_of_gross"}, "0.04", "0.05", "0.0500001"),
    ("var", {"basis": "amount"}, "4000", "5000", "5000.0001"),
    ("es", {"basis": "fraction_of_gross"}, "0.05", "0.0625", "0.0625001"),
    ("volatility", {}, "0.30", "0.40", "0.4000001"),
    ("drawdown", {}, "0.10", "0.20", "0.2000001"),
    ("risk_score", {}, "0.5", "0.8", "0.8000001"),
    ("gross_exposure", {}, "1000000", "2000000", "2000000.0001"),
    ("net_exposure", {}, "1000000", "2000000", "2000000.0001"),
    ("position_weight", {}, "0.20", "0.25", "0.2500001"),
]


@pytest.mark.parametrize(("figure", "extra", "soft", "hard", "above"), LIMITS, ids=[f"{x[0]}-{x[2]}" for x in LIMITS])
def test_a_limit_fires_above_each_level_and_not_at_it(portfolio, figure, extra, soft, hard, above):
    rule = AlertRuleFactory(
        parameters={"figure": figure, **extra, "soft": float(soft), "hard": float(hard)},
        severity=AlertSeverity.HIGH,
    )
    basis = extra.get("basis", "fraction_of_gross")

    def evaluate(value: str, minute: int):
        at = NOW + minutes(minute)
        RiskSnapshotFactory(portfolio=portfolio, as_of=at, **snapshot_fields(figure, Decimal(value), basis=basis))
        return services.evaluate_portfolio_risk(portfolio_ids=[portfolio.pk], now=at)

    assert not evaluate(soft, 0).raised  # at the soft level: within limits
    result = evaluate(hard, 1)  # at the hard level: above soft only
    (alert,) = result.raised
    assert (alert.figures["level"], alert.severity) == ("soft", AlertSeverity.MEDIUM)
    assert alert.figures["limit"] == pytest.approx(float(soft))
    result = evaluate(above, 2)  # just above the hard level
    assert not result.raised and [a.pk for a in result.updated] == [alert.pk]
    alert.refresh_from_db()
    assert (alert.figures["level"], alert.severity, alert.count) == ("hard", AlertSeverity.HIGH, 2)
    assert alert.figures["utilisation"] > 1
    result = evaluate(soft, 3)  # back at the soft level: cleared
    assert [a.pk for a in result.resolved] == [alert.pk]
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED and alert.auto_resolved
    rows = list(LimitUtilisation.objects.filter(rule=rule).order_by("as_of"))
    assert len(rows) == 4 and rows[1].utilisation == pytest.approx(1.0)
    assert rows[0].limit_soft == pytest.approx(float(soft)) and rows[0].limit_hard == pytest.approx(float(hard))


def test_a_limit_without_auto_resolve_stays_open_when_the_value_falls_back(portfolio):
    AlertRuleFactory(auto_resolve=False)
    RiskSnapshotFactory(portfolio=portfolio, as_of=NOW, var=Decimal("6000"))
    services.evaluate_portfolio_risk(now=NOW)
    RiskSnapshotFactory(portfolio=portfolio, as_of=NOW + minutes(1), var=Decimal("1000"))
    result = services.evaluate_portfolio_risk(now=NOW + minutes(1))
    assert not result.resolved
    assert Alert.objects.get().status == AlertStatus.OPEN


def test_only_the_latest_current_snapshot_counts(portfolio):
    AlertRuleFactory()
    RiskSnapshotFactory(portfolio=portfolio, as_of=NOW - minutes(5), var=Decimal("9000"))
    RiskSnapshotFactory(portfolio=portfolio, as_of=NOW, var=Decimal("1000"))
    # A point-in-time report of a past date is not the portfolio's current risk, even if it is stored later.
    RiskSnapshotFactory(
        portfolio=portfolio, as_of=NOW + minutes(1), var=Decimal("9000"), kind=SnapshotKind.POINT_IN_TIME
    )
    assert not services.evaluate_portfolio_risk(now=NOW).raised


def test_evaluating_the_same_snapshot_again_records_its_utilisation_once(portfolio):
    AlertRuleFactory()
    RiskSnapshotFactory(portfolio=portfolio, as_of=NOW)
    services.evaluate_portfolio_risk(now=NOW)
    services.evaluate_portfolio_risk(now=NOW + minutes(1))
    assert LimitUtilisation.objects.count() == 1


def test_a_rule_scoped_to_a_portfolio_ignores_the_others(portfolio):
    other = PortfolioFactory(code="OTHER")
    AlertRuleFactory(scope=Scope.PORTFOLIO, scope_portfolio=portfolio)
    RiskSnapshotFactory(portfolio=portfolio, as_of=NOW, var=Decimal("1000"))
    RiskSnapshotFactory(portfolio=other, as_of=NOW, var=Decimal("9000"))
    assert not services.evaluate_portfolio_risk(now=NOW).raised


def test_a_position_weight_limit_scoped_to_an_instrument_reads_only_that_position(portfolio):
    tcs = InstrumentFactory(symbol="TCS")
    AlertRuleFactory(
        parameters={"figure": "position_weight", "hard": 0.05}, scope=Scope.INSTRUMENT, scope_instrument=tcs
    )
    RiskSnapshotFactory(portfolio=portfolio, as_of=NOW, **snapshot_fields("position_weight", Decimal("0.9")))
    assert not services.evaluate_portfolio_risk(now=NOW).raised  # TCS weighs 1%, RELIANCE 90%


def test_a_change_to_a_rule_applies_at_the_next_evaluation(portfolio):
    rule = AlertRuleFactory()
    RiskSnapshotFactory(portfolio=portfolio, as_of=NOW, var=Decimal("4500"))
    assert services.evaluate_portfolio_risk(now=NOW).raised[0].figures["level"] == "soft"
    rule.parameters = {"figure": "var", "soft": 0.02, "hard": 0.03}
    rule.save()
    assert services.evaluate_portfolio_risk(now=NOW).updated[0].figures["level"] == "hard"
    rule.enabled = False
    rule.save()
    assert services.evaluate_portfolio_risk(now=NOW).evaluated == 0


def test_a_rule_with_broken_parameters_is_skipped_and_the_others_still_run(portfolio):
    AlertRuleFactory(parameters={"figure": "var"})  # no hard level: stored without validation
    AlertRuleFactory()
    RiskSnapshotFactory(portfolio=portfolio, as_of=NOW, var=Decimal("6000"))
    result = services.evaluate_portfolio_risk(now=NOW)
    assert len(result.raised) == 1


def test_a_partial_evaluation_leaves_other_portfolios_alerts_alone(portfolio):
    other = PortfolioFactory(code="OTHER")
    AlertRuleFactory()
    RiskSnapshotFactory(portfolio=other, as_of=NOW, var=Decimal("9000"))
    services.evaluate_portfolio_risk(now=NOW)
    RiskSnapshotFactory(portfolio=portfolio, as_of=NOW, var=Decimal("1000"))
    assert not services.evaluate_portfolio_risk(portfolio_ids=[portfolio.pk], now=NOW).resolved
    assert Alert.objects.get().status == AlertStatus.OPEN


def test_a_full_evaluation_resolves_the_alert_of_a_closed_portfolio(portfolio):
    AlertRuleFactory()
    RiskSnapshotFactory(portfolio=portfolio, as_of=NOW, var=Decimal("9000"))
    services.evaluate_portfolio_risk(now=NOW)
    portfolio.is_active = False
    portfolio.save()
    result = services.evaluate_portfolio_risk(now=NOW + minutes(1))
    assert len(result.resolved) == 1
    assert "No longer in the rule's scope" in Alert.objects.get().resolution_note


def test_an_approved_increase_replaces_the_level_until_it_expires(portfolio, analyst, admin_user):
    rule = AlertRuleFactory()
    RiskSnapshotFactory(portfolio=portfolio, as_of=NOW, var=Decimal("6000"))
    increase = services.limit_increase_request(
        rule=rule,
        portfolio=portfolio,
        user=analyst,
        new_hard=Decimal("0.07"),
        reason="Quarter-end rebalancing",
        expires_at=NOW + minutes(60),
        now=NOW - minutes(1),
    )
    services.limit_increase_approve(increase=increase, user=admin_user, now=NOW - minutes(1))
    result = services.evaluate_portfolio_risk(now=NOW)
    (alert,) = result.raised
    assert alert.figures["level"] == "soft" and alert.figures["hard"] == 0.07
    assert alert.figures["limit_increase_id"] == increase.pk
    assert LimitUtilisation.objects.get().limit_increase_id == increase.pk
    # From its expiry on, the rule's own level applies again, whether or not housekeeping ran.
    result = services.evaluate_portfolio_risk(now=NOW + minutes(60))
    assert result.updated[0].figures["level"] == "hard"


def test_a_requested_or_refused_increase_changes_nothing(portfolio):
    rule = AlertRuleFactory()
    LimitIncreaseFactory(rule=rule, new_hard=Decimal("0.5"), requested_at=NOW - minutes(1))
    LimitIncreaseFactory(
        rule=rule,
        new_hard=Decimal("0.5"),
        requested_at=NOW - minutes(1),
        status=LimitIncreaseStatus.REFUSED,
        decided_by=UserFactory(),
        decided_at=NOW - minutes(1),
    )
    RiskSnapshotFactory(portfolio=portfolio, as_of=NOW, var=Decimal("6000"))
    assert services.evaluate_portfolio_risk(now=NOW).raised[0].figures["level"] == "hard"


def test_a_portfolio_increase_wins_over_one_for_every_portfolio(portfolio, admin_user):
    rule = AlertRuleFactory()
    common = {"rule": rule, "status": LimitIncreaseStatus.APPROVED, "requested_at": NOW - minutes(5)}
    LimitIncreaseFactory(**common, new_hard=Decimal("0.055"), decided_by=admin_user, decided_at=NOW - minutes(1))
    LimitIncreaseFactory(
        **common, portfolio=portfolio, new_hard=Decimal("0.2"), decided_by=admin_user, decided_at=NOW - minutes(2)
    )
    RiskSnapshotFactory(portfolio=portfolio, as_of=NOW, var=Decimal("6000"))
    assert services.evaluate_portfolio_risk(now=NOW).raised[0].figures["hard"] == 0.2


# ------------------------------------------------------------------------------ client exposure


def hold(portfolio, instrument, quantity) -> Position:
    position, _ = Position.objects.update_or_create(
        portfolio=portfolio, instrument=instrument, defaults={"quantity": Decimal(quantity)}
    )
    return position


def test_client_exposure_fires_above_the_limit_and_not_at_it(client_account, reliance):
    AlertRuleFactory(kind=RuleKind.CLIENT_EXPOSURE, parameters={"hard": 1_000_000})
    hold(client_account, reliance, "10000")  # 10,000 x 100 = 1,000,000 INR
    assert not services.evaluate_portfolio_risk(now=NOW).raised
    hold(client_account, reliance, "10000.01")
    (alert,) = services.evaluate_portfolio_risk(now=NOW).raised
    assert alert.portfolio == client_account and alert.figures["value"] == pytest.approx(1_000_001)
    assert alert.figures["level"] == "hard" and alert.title == "Gross client exposure above hard limit: CL-1"


def test_client_exposure_is_converted_to_the_base_currency_and_shorts_count_gross(client_account, reliance):
    aapl = InstrumentFactory(symbol="AAPL", currency="USD", exchange="NASDAQ")
    QuoteFactory(instrument=aapl, price=Decimal("100"))
    FxRateFactory(base_currency="USD", quote_currency="INR", rate=Decimal("80"))
    AlertRuleFactory(kind=RuleKind.CLIENT_EXPOSURE, parameters={"hard": 1_000_000})
    hold(client_account, aapl, "-100")  # 800,000 INR short
    hold(client_account, reliance, "2000")  # 200,000 INR long
    assert not services.evaluate_portfolio_risk(now=NOW).raised  # gross exactly 1,000,000
    hold(client_account, reliance, "2001")
    assert services.evaluate_portfolio_risk(now=NOW).raised[0].figures["gross"] == pytest.approx(1_000_100)


def test_net_client_exposure_nets_longs_against_shorts(client_account, reliance):
    tcs = InstrumentFactory(symbol="TCS")
    QuoteFactory(instrument=tcs, price=Decimal("100"))
    AlertRuleFactory(kind=RuleKind.CLIENT_EXPOSURE, parameters={"hard": 1_000_000, "measure": "net"})
    hold(client_account, reliance, "20000")
    hold(client_account, tcs, "-15000")
    assert not services.evaluate_portfolio_risk(now=NOW).raised  # net 500,000


def test_client_exposure_watches_client_accounts_only_unless_told(portfolio, reliance):
    hold(portfolio, reliance, "20000")  # a book, not a client account
    AlertRuleFactory(kind=RuleKind.CLIENT_EXPOSURE, parameters={"hard": 1_000_000})
    assert not services.evaluate_portfolio_risk(now=NOW).raised
    AlertRuleFactory(kind=RuleKind.CLIENT_EXPOSURE, parameters={"hard": 1_000_000, "clients_only": False})
    assert len(services.evaluate_portfolio_risk(now=NOW).raised) == 1


def test_a_client_that_sells_out_is_cleared(client_account, reliance):
    AlertRuleFactory(kind=RuleKind.CLIENT_EXPOSURE, parameters={"hard": 1_000_000})
    hold(client_account, reliance, "20000")
    services.evaluate_portfolio_risk(portfolio_ids=[client_account.pk], now=NOW)
    hold(client_account, reliance, "0")
    assert len(services.evaluate_portfolio_risk(portfolio_ids=[client_account.pk], now=NOW).resolved) == 1


# ------------------------------------------------------------------------------ symbol concentration


def test_firm_wide_exposure_to_a_symbol_adds_every_portfolio_and_fires_above_the_limit(portfolio, reliance):
    other = PortfolioFactory(code="BETA")
    AlertRuleFactory(kind=RuleKind.SYMBOL_CONCENTRATION, parameters={"hard": 500_000})
    hold(portfolio, reliance, "2500")
    hold(other, reliance, "2500")  # 5,000 x 100 = 500,000 INR
    assert not services.evaluate_portfolio_risk(now=NOW).raised
    hold(other, reliance, "2501")
    (alert,) = services.evaluate_portfolio_risk(portfolio_ids=[other.pk], now=NOW).raised
    assert alert.instrument == reliance and alert.portfolio is None
    assert alert.subject_key == f"instrument:{reliance.pk}" and alert.figures["positions"] == 2


def test_firm_wide_exposure_is_added_up_in_the_rule_currency(portfolio):
    aapl = InstrumentFactory(symbol="AAPL", currency="USD", exchange="NASDAQ")
    QuoteFactory(instrument=aapl, price=Decimal("100"))
    FxRateFactory(base_currency="USD", quote_currency="INR", rate=Decimal("80"))
    AlertRuleFactory(kind=RuleKind.SYMBOL_CONCENTRATION, parameters={"hard": 6_000, "currency": "USD"})
    hold(portfolio, aapl, "60")
    assert not services.evaluate_portfolio_risk(now=NOW).raised
    hold(portfolio, aapl, "61")
    assert services.evaluate_portfolio_risk(now=NOW).raised[0].figures["value"] == pytest.approx(6_100)


def test_a_symbol_nobody_holds_any_more_is_cleared_by_a_partial_evaluation(portfolio, reliance):
    AlertRuleFactory(kind=RuleKind.SYMBOL_CONCENTRATION, parameters={"hard": 500_000})
    hold(portfolio, reliance, "6000")
    services.evaluate_portfolio_risk(portfolio_ids=[portfolio.pk], now=NOW)
    hold(portfolio, reliance, "0")
    assert len(services.evaluate_portfolio_risk(portfolio_ids=[portfolio.pk], now=NOW).resolved) == 1


def test_symbol_concentration_scoped_to_an_asset_class_ignores_other_classes(portfolio, reliance):
    AlertRuleFactory(
        kind=RuleKind.SYMBOL_CONCENTRATION,
        parameters={"hard": 500_000},
        scope=Scope.ASSET_CLASS,
        scope_asset_class=AssetClass.CRYPTO,
    )
    hold(portfolio, reliance, "9000")
    assert not services.evaluate_portfolio_risk(now=NOW).raised


# ------------------------------------------------------------------------------ velocity


def book(portfolio, instrument, n: int, at: dt.datetime, *, price="100", quantity="1", source=TradeSource.MANUAL):
    return trade_book(
        portfolio=portfolio,
        instrument=instrument,
        side="BUY",
        quantity=Decimal(quantity),
        price=Decimal(price),
        traded_at=at,
        external_id=f"{portfolio.code}-{n}",
        source=source,
    ).trade


def test_velocity_fires_at_the_eleventh_trade_in_a_minute_not_the_tenth(portfolio, reliance):
    AlertRuleFactory(kind=RuleKind.TRADE_VELOCITY, parameters={"max_trades": 10, "window_seconds": 60})
    trades = [book(portfolio, reliance, n, NOW + dt.timedelta(seconds=5 * n)) for n in range(10)]
    assert not services.evaluate_trade(trade=trades[-1]).raised  # 10 trades in 45 s
    eleventh = book(portfolio, reliance, 10, NOW + dt.timedelta(seconds=50))
    (alert,) = services.evaluate_trade(trade=eleventh).raised
    assert alert.figures["value"] == 11 and alert.figures["external_id"] == "ALPHA-10"
    assert alert.title == "Trade velocity: ALPHA booked 11 trade(s) in 60 s"


def test_a_trade_exactly_one_window_earlier_is_outside_the_window(portfolio, reliance):
    rule = AlertRuleFactory(kind=RuleKind.TRADE_VELOCITY, parameters={"max_trades": 10, "window_seconds": 60})
    book(portfolio, reliance, 0, NOW)
    for n in range(1, 10):
        book(portfolio, reliance, n, NOW + dt.timedelta(seconds=50 + n))
    last = book(portfolio, reliance, 10, NOW + dt.timedelta(seconds=60))
    assert not services.evaluate_trade(trade=last).raised  # (t - 60 s, t] holds the last 10, not the first
    rule.parameters = {"max_trades": 10, "window_seconds": 61}
    rule.save()
    assert services.evaluate_trade(trade=last).raised[0].figures["value"] == 11


def test_velocity_counts_one_client_at_a_time(portfolio, reliance):
    other = PortfolioFactory(code="BETA")
    AlertRuleFactory(kind=RuleKind.TRADE_VELOCITY, parameters={"max_trades": 3, "window_seconds": 60})
    for n in range(3):
        book(portfolio, reliance, n, NOW + dt.timedelta(seconds=n))
    last = book(other, reliance, 9, NOW + dt.timedelta(seconds=5))
    assert not services.evaluate_trade(trade=last).raised


def test_a_velocity_alert_clears_at_a_later_calm_trade(portfolio, reliance):
    AlertRuleFactory(kind=RuleKind.TRADE_VELOCITY, parameters={"max_trades": 2, "window_seconds": 60})
    trades = [book(portfolio, reliance, n, NOW + dt.timedelta(seconds=n)) for n in range(3)]
    assert services.evaluate_trade(trade=trades[-1]).raised
    calm = book(portfolio, reliance, 3, NOW + minutes(5))
    assert len(services.evaluate_trade(trade=calm).resolved) == 1


# ------------------------------------------------------------------------------ notional z-score


def history_create(portfolio, instrument) -> list[float]:
    """Book twenty past trades of one unit at 90 and 110 (median 100, MAD 10); return their notionals."""
    for n in range(20):
        book(portfolio, instrument, n, NOW + dt.timedelta(minutes=n), price="90" if n % 2 else "110")
    return [90.0, 110.0] * 10


@pytest.fixture
def history(portfolio, reliance):
    return history_create(portfolio, reliance)


def test_the_zscore_fires_above_its_threshold_and_not_at_it(portfolio, reliance, history):
    twin = PortfolioFactory(code="TWIN")
    history_create(twin, reliance)
    z_at_150, median, _ = robust_zscore(150.0, history)
    assert median == 100 and z_at_150 == pytest.approx(50 / (1.4826 * 10), rel=1e-4)
    AlertRuleFactory(kind=RuleKind.TRADE_ZSCORE, parameters={"threshold": z_at_150}, auto_resolve=False)
    at_threshold = book(portfolio, reliance, 100, NOW + minutes(30), price="150")
    assert not services.evaluate_trade(trade=at_threshold).raised
    above = book(twin, reliance, 100, NOW + minutes(30), price="150.01")  # against the same history
    (alert,) = services.evaluate_trade(trade=above).raised
    assert alert.figures["value"] > z_at_150 and alert.figures["external_id"] == "TWIN-100"
    assert (alert.figures["history"], alert.figures["median"]) == (20, 100)


def test_the_zscore_waits_for_enough_history(portfolio, reliance):
    AlertRuleFactory(kind=RuleKind.TRADE_ZSCORE, parameters={"min_history": 20})
    for n in range(19):
        book(portfolio, reliance, n, NOW + dt.timedelta(minutes=n))
    outsized = book(portfolio, reliance, 99, NOW + minutes(30), quantity="1000")
    assert not services.evaluate_trade(trade=outsized).raised


def test_outsized_trades_of_a_client_gather_on_one_alert_that_a_normal_trade_does_not_clear(
    portfolio, reliance, history
):
    AlertRuleFactory(kind=RuleKind.TRADE_ZSCORE, parameters={"threshold": 3}, auto_resolve=True)
    first = book(portfolio, reliance, 100, NOW + minutes(30), quantity="50")
    second = book(portfolio, reliance, 101, NOW + minutes(31), quantity="60")
    services.evaluate_trade(trade=first)
    services.evaluate_trade(trade=second)
    normal = book(portfolio, reliance, 102, NOW + minutes(32), price="100")
    assert not services.evaluate_trade(trade=normal).resolved
    alert = Alert.objects.get()
    assert alert.count == 2 and alert.figures["trade_ids"] == [first.pk, second.pk]
    assert alert.status == AlertStatus.OPEN


# ------------------------------------------------------------------------------ anomaly score hook


def test_the_anomaly_hook_fires_above_the_threshold_and_not_at_it(portfolio, reliance):
    AlertRuleFactory(kind=RuleKind.TRADE_ANOMALY, parameters={"threshold": 0.65}, severity=AlertSeverity.MEDIUM)
    trade = book(portfolio, reliance, 1, NOW)
    assert not services.evaluate_trade_anomaly_score(trade=trade, score=0.65).raised
    (alert,) = services.evaluate_trade_anomaly_score(trade=trade, score=0.6500001).raised
    assert alert.figures["value"] == 0.6500001 and alert.title == "Anomalous trade: ALPHA ALPHA-1"


@pytest.mark.parametrize("score", [float("nan"), -0.1, 1.5, "0.9", True])
def test_the_anomaly_hook_refuses_a_score_outside_zero_to_one(portfolio, reliance, score):
    trade = book(portfolio, reliance, 1, NOW)
    with pytest.raises(Exception, match="from 0"):
        services.evaluate_trade_anomaly_score(trade=trade, score=score)


def test_trade_rules_respect_their_scope(portfolio, reliance):
    tcs = InstrumentFactory(symbol="TCS")
    AlertRuleFactory(kind=RuleKind.TRADE_ANOMALY, parameters={}, scope=Scope.INSTRUMENT, scope_instrument=tcs)
    trade = book(portfolio, reliance, 1, NOW)
    assert not services.evaluate_trade_anomaly_score(trade=trade, score=0.99).raised


# ------------------------------------------------------------------------------ booking hook


def test_a_booked_trade_is_surveilled_after_the_commit(portfolio, reliance, django_capture_on_commit_callbacks):
    AlertRuleFactory(kind=RuleKind.TRADE_VELOCITY, parameters={"max_trades": 2, "window_seconds": 60})
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(3):
            book(portfolio, reliance, n, NOW + dt.timedelta(seconds=n))
    assert Alert.objects.get().figures["value"] == 3


def test_imported_trades_are_not_surveilled_as_they_are_booked(portfolio, reliance, django_capture_on_commit_callbacks):
    AlertRuleFactory(kind=RuleKind.TRADE_VELOCITY, parameters={"max_trades": 2, "window_seconds": 60})
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(3):
            book(portfolio, reliance, n, NOW + dt.timedelta(seconds=n), source=TradeSource.IMPORT)
    assert not Alert.objects.exists()


def test_a_surveillance_failure_never_undoes_the_booking(
    portfolio, reliance, django_capture_on_commit_callbacks, monkeypatch
):
    def boom(**kwargs):
        raise RuntimeError("surveillance down")

    monkeypatch.setattr(services, "evaluate_trade", boom)
    with django_capture_on_commit_callbacks(execute=True):
        trade = book(portfolio, reliance, 1, NOW)
    trade.refresh_from_db()
    assert Position.objects.get(portfolio=portfolio).quantity == 1


# ------------------------------------------------------------------------------ market: price moves


def test_a_price_move_fires_beyond_the_threshold_and_not_at_it(reliance):
    AlertRuleFactory(
        kind=RuleKind.PRICE_MOVE,
        parameters={"move": 0.05, "window_minutes": 60},
        scope=Scope.INSTRUMENT,
        scope_instrument=reliance,
    )
    TickFactory(instrument=reliance, ts=NOW - minutes(61), price=Decimal("100"))
    TickFactory(instrument=reliance, ts=NOW - minutes(1), price=Decimal("105"))
    assert not services.evaluate_market(now=NOW).raised  # +5.00%: at the threshold
    TickFactory(instrument=reliance, ts=NOW - dt.timedelta(seconds=5), price=Decimal("105.01"))
    (alert,) = services.evaluate_market(now=NOW).raised
    assert alert.instrument == reliance and alert.figures["value"] == pytest.approx(0.0501)
    assert alert.title == "RELIANCE moved +5.01% in 60 min"


def test_a_fall_counts_in_both_directions_but_not_when_watching_rises_only(reliance):
    common = {"kind": RuleKind.PRICE_MOVE, "scope": Scope.INSTRUMENT, "scope_instrument": reliance}
    AlertRuleFactory(**common, parameters={"move": 0.05})
    AlertRuleFactory(**common, parameters={"move": 0.05, "direction": "up"})
    TickFactory(instrument=reliance, ts=NOW - minutes(61), price=Decimal("100"))
    TickFactory(instrument=reliance, ts=NOW, price=Decimal("90"))
    result = services.evaluate_market(now=NOW)
    assert [a.rule.parameters["direction"] for a in result.raised] == ["both"]


def test_no_price_move_alert_until_the_window_is_covered(reliance):
    AlertRuleFactory(kind=RuleKind.PRICE_MOVE, parameters={}, scope=Scope.INSTRUMENT, scope_instrument=reliance)
    TickFactory(instrument=reliance, ts=NOW - minutes(30), price=Decimal("100"))
    TickFactory(instrument=reliance, ts=NOW, price=Decimal("150"))
    assert not services.evaluate_market(now=NOW).raised


def test_price_moves_watch_the_feed_symbols_and_clear_when_a_symbol_is_no_longer_watched(reliance):
    tcs = InstrumentFactory(symbol="TCS")
    state = FeedState.get_solo()
    state.watched.set([reliance])
    AlertRuleFactory(kind=RuleKind.PRICE_MOVE, parameters={"move": 0.05})
    for instrument in (reliance, tcs):
        TickFactory(instrument=instrument, ts=NOW - minutes(61), price=Decimal("100"))
        TickFactory(instrument=instrument, ts=NOW, price=Decimal("120"))
    (alert,) = services.evaluate_market(now=NOW).raised
    assert alert.instrument == reliance
    state.watched.set([tcs])
    result = services.evaluate_market(now=NOW)
    assert [a.instrument for a in result.raised] == [tcs] and [a.instrument for a in result.resolved] == [reliance]


# ------------------------------------------------------------------------------ market: stale data


@pytest.fixture
def stale_rule(reliance):
    return AlertRuleFactory(
        kind=RuleKind.STALE_DATA,
        parameters={"max_age_seconds": 120},
        scope=Scope.INSTRUMENT,
        scope_instrument=reliance,
        severity=AlertSeverity.LOW,
    )


def test_data_is_stale_only_when_older_than_the_maximum_age(reliance, stale_rule):
    TickFactory(instrument=reliance, ts=NOW - dt.timedelta(seconds=120))
    assert not services.evaluate_market(now=NOW).raised
    (alert,) = services.evaluate_market(now=NOW + dt.timedelta(seconds=1)).raised
    assert alert.title == "Stale data: RELIANCE" and alert.figures["value"] == 121
    TickFactory(instrument=reliance, ts=NOW + dt.timedelta(seconds=2))
    assert len(services.evaluate_market(now=NOW + dt.timedelta(seconds=3)).resolved) == 1


def test_a_symbol_that_never_ticked_is_stale(reliance, stale_rule):
    (alert,) = services.evaluate_market(now=NOW).raised
    assert alert.message == "No tick received yet."


def test_stale_data_is_not_flagged_while_the_market_is_closed_outside_demo_mode(reliance, stale_rule):
    state = FeedState.get_solo()
    state.always_open = False
    state.save()
    evening = dt.datetime(2026, 6, 30, 14, 0, tzinfo=dt.UTC)  # 19:30 in Mumbai: NSE closed
    assert not services.evaluate_market(now=evening).raised
    assert services.evaluate_market(now=NOW).raised  # 11:30 in Mumbai: open


def test_the_feed_setting_is_the_default_maximum_age(reliance):
    AlertRuleFactory(kind=RuleKind.STALE_DATA, parameters={}, scope=Scope.INSTRUMENT, scope_instrument=reliance)
    state = FeedState.get_solo()
    state.stale_after_seconds = 300
    state.save()
    TickFactory(instrument=reliance, ts=NOW - dt.timedelta(seconds=300))
    assert not services.evaluate_market(now=NOW).raised
    assert services.evaluate_market(now=NOW + dt.timedelta(seconds=1)).raised


def test_evaluate_market_narrowed_to_some_symbols_looks_at_those_only(reliance, stale_rule):
    other = InstrumentFactory(symbol="TCS")
    assert not services.evaluate_market(symbol_ids=[other.pk], now=NOW).raised
    assert services.evaluate_market(symbol_ids=[reliance.pk], now=NOW).raised


# ------------------------------------------------------------------------------ everything


def test_evaluate_all_runs_limits_exposures_and_market_rules_together(portfolio, reliance, stale_rule):
    AlertRuleFactory()
    RiskSnapshotFactory(portfolio=portfolio, as_of=NOW, var=Decimal("9000"))
    result = services.evaluate_all(now=NOW)
    assert sorted(a.rule.kind for a in result.raised) == [RuleKind.RISK_LIMIT, RuleKind.STALE_DATA]
    assert result.utilisations == 1


def test_the_default_rules_evaluate_without_errors(default_rules, portfolio, reliance, client_account):
    hold(client_account, reliance, "20000")
    RiskSnapshotFactory(portfolio=portfolio, as_of=timezone.now())
    result = services.evaluate_all()
    assert {a.rule.name for a in result.raised} >= {"Client exposure", "Firm-wide symbol exposure"}
