"""Tasks run inline here: settings_test sets Q_CLUSTER sync=True."""

import datetime as dt

import pytest
from django.utils import timezone

from apps.risk import tasks
from apps.risk.models import RiskSnapshot, SnapshotKind, SymbolSignal
from tests.factories import PortfolioFactory
from tests.risk.synthetic import desk_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def desk():
    return desk_create()


def test_recalculate_portfolio_stores_an_intraday_snapshot(desk):
    snapshot_id = tasks.recalculate_portfolio(desk.portfolio.pk)
    snapshot = RiskSnapshot.objects.get(pk=snapshot_id)
    assert snapshot.kind == SnapshotKind.INTRADAY and snapshot.portfolio == desk.portfolio


def test_recalculate_portfolio_skips_closed_and_missing_portfolios(desk):
    closed = PortfolioFactory(code="CLOSED", is_active=False)
    assert tasks.recalculate_portfolio(closed.pk) is None
    assert tasks.recalculate_portfolio(999_999) is None
    assert not RiskSnapshot.objects.exists()


def test_recalculate_all_and_signals(desk):
    PortfolioFactory(code="EMPTY")
    ids = tasks.recalculate_all()
    assert RiskSnapshot.objects.filter(pk__in=ids, kind=SnapshotKind.SCHEDULED).count() == 2
    assert tasks.refresh_symbol_signals() == SymbolSignal.objects.count() == 4


def test_backtest_all_keeps_the_summary_on_the_latest_snapshot(desk, monkeypatch):
    from apps.risk import services

    tasks.recalculate_portfolio(desk.portfolio.pk, kind=SnapshotKind.SCHEDULED)
    original = services.risk_backtest

    def short(**kwargs):
        from tests.risk.synthetic import END, at

        return original(**{**kwargs, "window": 100, "observations": 150, "as_of": at(END, 23)})

    monkeypatch.setattr(services, "risk_backtest", short)
    summaries = tasks.backtest_all()
    assert summaries["DESK"]["observations"] == 150
    backtest = RiskSnapshot.objects.get().stats["backtest"]
    assert backtest["basel_zone"] in ("green", "yellow", "red")
    assert set(backtest) >= {"exceptions", "kupiec_p", "christoffersen_p", "conditional_coverage_p", "run_at"}


def test_housekeeping_deletes_old_intraday_snapshots_and_signals_only(desk):
    old, recent, scheduled = (
        tasks.recalculate_portfolio(desk.portfolio.pk),
        tasks.recalculate_portfolio(desk.portfolio.pk),
        tasks.recalculate_portfolio(desk.portfolio.pk, kind=SnapshotKind.SCHEDULED),
    )
    long_ago = timezone.now() - dt.timedelta(days=31)
    RiskSnapshot.objects.filter(pk__in=[old, scheduled]).update(computed_at=long_ago)
    tasks.refresh_symbol_signals()
    SymbolSignal.objects.filter(instrument__symbol="RELI").update(computed_at=long_ago)
    assert tasks.snapshots_housekeeping() == 1
    assert set(RiskSnapshot.objects.values_list("pk", flat=True)) == {recent, scheduled}
    assert set(SymbolSignal.objects.values_list("instrument__symbol", flat=True)) == {"AAPL", "NIFTY", "GSEC"}
