import datetime as dt
from decimal import Decimal

import pytest

from apps.risk import selectors
from apps.risk.models import RiskSnapshot, Severity, SnapshotKind, SymbolSignal
from tests.factories import InstrumentFactory, PortfolioFactory

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 6, 1, 10, tzinfo=dt.UTC)


def snap(
    portfolio, hours: int, *, var="100", severity=Severity.NONE, score=0.1, mv="1000", kind=SnapshotKind.SCHEDULED
):
    return RiskSnapshot.objects.create(
        portfolio=portfolio,
        kind=kind,
        as_of=T0 + dt.timedelta(hours=hours),
        duration_ms=1.0,
        base_currency=portfolio.base_currency,
        market_value=Decimal(mv),
        gross_exposure=Decimal(mv),
        confidence=0.95,
        horizon_days=1,
        var=Decimal(var),
        es=Decimal(var) * 2,
        risk_score=score,
        severity=severity,
    )


def signal(instrument, hours: int, severity=Severity.NONE):
    return SymbolSignal.objects.create(
        instrument=instrument,
        as_of=T0 + dt.timedelta(hours=hours),
        last_price=Decimal("10"),
        return_1d=0.01,
        rolling_volatility=0.2,
        long_volatility=0.2,
        volatility_zscore=0.0,
        return_zscore=0.5,
        drawdown=0.0,
        severity=severity,
    )


@pytest.fixture
def books():
    a, b = PortfolioFactory(code="A"), PortfolioFactory(code="B", base_currency="USD")
    closed = PortfolioFactory(code="C", is_active=False)
    snaps = {
        "a1": snap(a, 0, var="100"),
        "a2": snap(a, 2, var="150", severity=Severity.HIGH, score=0.9, mv="2000"),
        "b1": snap(b, 1, var="10", severity=Severity.LOW, score=0.4, mv="500"),
        "b2": snap(b, 1, var="20", severity=Severity.LOW, score=0.35, mv="600"),  # same as_of: the later id wins
        "c1": snap(closed, 5, var="999"),
    }
    return a, b, snaps


def test_latest_snapshot_per_active_portfolio(books, django_assert_num_queries):
    _, _, s = books
    with django_assert_num_queries(1):
        latest = list(selectors.snapshot_latest_per_portfolio())
    assert latest == [s["a2"], s["b2"]]
    assert latest[0].portfolio.code == "A"
    assert s["c1"] in selectors.snapshot_latest_per_portfolio(active_only=False)


def test_history_filters(books):
    a, _, s = books
    assert list(selectors.snapshot_history(portfolio=a)) == [s["a2"], s["a1"]]
    assert list(selectors.snapshot_history(severity=Severity.LOW)) == [s["b2"], s["b1"]]
    assert list(selectors.snapshot_history(since=T0 + dt.timedelta(hours=1), until=T0 + dt.timedelta(hours=2))) == [
        s["a2"],
        s["b2"],
        s["b1"],
    ]


def test_previous_snapshot_orders_by_as_of_then_id(books):
    _, _, s = books
    assert selectors.snapshot_previous(s["a2"]) == s["a1"]
    assert selectors.snapshot_previous(s["a1"]) is None
    assert selectors.snapshot_previous(s["b2"]) == s["b1"]


def test_risk_stats_aggregate_the_latest_snapshots(books):
    stats = selectors.risk_stats()
    assert stats.portfolios == 2
    assert stats.by_severity == {"NONE": 0, "LOW": 1, "MEDIUM": 0, "HIGH": 1}
    assert stats.market_value == Decimal("2600")
    assert stats.var == Decimal("170") and stats.es == Decimal("340")
    assert stats.average_score == pytest.approx((0.9 + 0.35) / 2)
    assert stats.latest_computed_at is not None
    assert stats.by_currency["USD"]["var"] == Decimal("20")


def test_risk_stats_of_an_empty_desk():
    stats = selectors.risk_stats()
    assert stats.portfolios == 0 and stats.var == 0 and stats.average_score is None


def test_latest_signal_per_symbol():
    x, y = InstrumentFactory(symbol="XX"), InstrumentFactory(symbol="YY")
    signal(x, 0, Severity.HIGH)
    newest_x = signal(x, 1)
    newest_y = signal(y, 0, Severity.HIGH)
    assert list(selectors.signals_latest_per_symbol()) == [newest_x, newest_y]
    assert list(selectors.signals_latest_per_symbol(severity=Severity.HIGH)) == [newest_y]
    assert list(selectors.signals_latest_per_symbol(symbol="XX")) == [newest_x]
