"""Recalculating every portfolio from one load: batch figures, full and quick passes, failures, the command."""

import logging
from io import StringIO

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from numpy.testing import assert_allclose

from apps.portfolios.models import Portfolio
from apps.risk import services, tasks
from apps.risk.engine import batch as engine_batch
from apps.risk.inputs import portfolio_inputs, portfolios_inputs
from apps.risk.models import RiskSnapshot, SnapshotKind
from tests.factories import PortfolioFactory
from tests.risk.synthetic import at, book, desk_create, fx_create, random_walk

pytestmark = pytest.mark.django_db


@pytest.fixture
def desk():
    """The synthetic desk (INR), a EUR client holding part of it and a USD client, and a closed portfolio."""
    desk = desk_create()
    rng = np.random.default_rng(3)
    fx_create("EUR", "USD", desk.dates, random_walk(rng, 1.08, 0.07, len(desk.dates)))
    d, c, i = desk.dates, desk.closes, desk.instruments
    eur = PortfolioFactory(code="EURCLIENT", base_currency="EUR")
    book(eur, i["AAPL"], "BUY", 30, c["AAPL"][-20], at(d[-20]), "E1")
    book(eur, i["NIFTYC24000"], "BUY", 2, c["NIFTYC24000"][-15], at(d[-15]), "E2")
    book(eur, i["GSEC"], "SELL", 200, c["GSEC"][-12], at(d[-12]), "E3")
    usd = PortfolioFactory(code="USDCLIENT", base_currency="USD", benchmark=i["NIFTY"])
    book(usd, i["RELI"], "BUY", 40, c["RELI"][-9], at(d[-9]), "U1")
    book(usd, i["NIFTYFUT"], "SELL", 1, c["NIFTYFUT"][-8], at(d[-8]), "U2")
    book(usd, i["AAPL"], "SELL", 5, c["AAPL"][-7], at(d[-7]), "U3")
    PortfolioFactory(code="CLOSED", is_active=False)
    return desk


def headline(snapshot: RiskSnapshot) -> dict:
    return {(f["method"], f["confidence"], f["horizon_days"]): (f["var"], f["es"]) for f in snapshot.figures}


def test_batch_figures_equal_each_portfolios_own_calculation(desk):
    portfolios = [desk.portfolio, *Portfolio.objects.filter(code__in=["EURCLIENT", "USDCLIENT"])]
    inputs, market = portfolios_inputs(portfolios=portfolios)
    assert {"FX:USD/INR", "FX:USD/EUR", "FX:INR/EUR", "FX:INR/USD"} <= set(market.symbols)
    for item in inputs:
        own = portfolio_inputs(portfolio=next(p for p in portfolios if p.pk == item.portfolio_id))
        assert item.holdings == own.holdings and item.warnings == own.warnings
        assert item.market.symbols == own.market.symbols
        assert_allclose(item.market.prices, own.market.prices)
    config = services.engine_config(services.RiskConfig.get_solo())
    batch = engine_batch.compute_batch_historical(
        market=market,
        config=config,
        portfolios=[i.holdings for i in inputs],
        calendars=[i.market.dates for i in inputs],
    )
    for k, portfolio in enumerate(portfolios):
        result = services.risk_calculate(portfolio=portfolio)
        expected = [(f.var, f.es) for f in result.var if f.method == "historical"]
        assert_allclose([(f.var, f.es) for f in batch.figures(k)], expected, rtol=1e-10)
        assert_allclose([batch.market_value[k], batch.gross_exposure[k]], [result.market_value, result.gross_exposure])


def test_inputs_of_many_portfolios_take_as_many_queries_as_one(desk):
    one = [desk.portfolio]
    many = list(Portfolio.objects.filter(is_active=True).select_related("benchmark"))
    with CaptureQueriesContext(connection) as small:
        portfolios_inputs(portfolios=one)
    with CaptureQueriesContext(connection) as large:
        inputs, _ = portfolios_inputs(portfolios=many)
    assert len(inputs) == 3
    assert len(large) == len(small)


def test_recalculate_all_stores_what_risk_snapshot_create_would(desk):
    ids = services.risk_recalculate_all()
    stored = {s.portfolio.code: s for s in RiskSnapshot.objects.filter(pk__in=ids).select_related("portfolio")}
    assert sorted(stored) == ["DESK", "EURCLIENT", "USDCLIENT"]
    for code, snapshot in stored.items():
        assert snapshot.kind == SnapshotKind.SCHEDULED and "quick" not in snapshot.config
        single = services.risk_snapshot_create(portfolio=snapshot.portfolio)
        assert (snapshot.var, snapshot.es, snapshot.market_value) == (single.var, single.es, single.market_value), code
        assert headline(snapshot).keys() == headline(single).keys()
        for key, value in headline(single).items():
            assert_allclose(headline(snapshot)[key], value, rtol=1e-9, err_msg=f"{code} {key}")
        assert snapshot.contributions == single.contributions
        assert snapshot.risk_score == pytest.approx(single.risk_score)
        assert snapshot.warnings == single.warnings


def test_one_failing_portfolio_does_not_stop_the_others(desk, monkeypatch, caplog):
    original = services.risk_calculation

    def flaky(*, portfolio, **kwargs):
        if portfolio.code == "EURCLIENT":
            raise RuntimeError("boom")
        return original(portfolio=portfolio, **kwargs)

    monkeypatch.setattr(services, "risk_calculation", flaky)
    ids = services.risk_recalculate_all()
    codes = set(RiskSnapshot.objects.filter(pk__in=ids).values_list("portfolio__code", flat=True))
    assert codes == {"DESK", "USDCLIENT"}
    assert "Risk recalculation of EURCLIENT failed" in caplog.text


def test_a_failing_batch_falls_back_to_one_portfolio_at_a_time(desk, monkeypatch, caplog):
    original = engine_batch.compute_batch_historical
    usd_id = Portfolio.objects.get(code="USDCLIENT").pk

    def fragile(**kwargs):
        if len(kwargs["portfolios"]) > 1:
            raise ValueError("one bad portfolio")
        if any(h.currency == "INR" and h.fx_symbol == "FX:INR/USD" for h in kwargs["portfolios"][0]):
            raise ValueError("bad")
        return original(**kwargs)

    monkeypatch.setattr(engine_batch, "compute_batch_historical", fragile)
    with caplog.at_level(logging.ERROR):
        ids = services.risk_recalculate_all(quick=True)
    stored = RiskSnapshot.objects.filter(pk__in=ids)
    assert set(stored.values_list("portfolio__code", flat=True)) == {"DESK", "EURCLIENT"}
    assert not stored.filter(portfolio_id=usd_id).exists()
    assert "Batch risk pass failed" in caplog.text and "Risk recalculation of USDCLIENT failed" in caplog.text


def test_quick_pass_stores_light_snapshots_with_the_batch_figures_and_a_warning(desk):
    services.risk_snapshot_create(portfolio=desk.portfolio)  # DESK has a full snapshot; the clients do not
    full = RiskSnapshot.objects.get()
    ids = tasks.recalculate_all_quick()
    quick = {s.portfolio.code: s for s in RiskSnapshot.objects.filter(pk__in=ids).select_related("portfolio")}
    assert sorted(quick) == ["DESK", "EURCLIENT", "USDCLIENT"]
    for code, snapshot in quick.items():
        assert snapshot.kind == SnapshotKind.SCHEDULED
        assert snapshot.config["quick"] is True
        assert snapshot.warnings[-1].startswith("Quick pass: historical VaR and ES only")
        assert {f["method"] for f in snapshot.figures} == {"historical"} and len(snapshot.figures) == 2
        assert snapshot.contributions == [] and snapshot.stress == [] and snapshot.stats == {}
        assert snapshot.var > 0 and snapshot.es >= snapshot.var, code
    desk_quick = quick["DESK"]
    assert (desk_quick.var, desk_quick.es, desk_quick.market_value) == (full.var, full.es, full.market_value)
    assert (desk_quick.risk_score, desk_quick.severity) == (full.risk_score, full.severity)
    assert "copied from the full snapshot" in desk_quick.config["score_source"]
    client = quick["EURCLIENT"]
    assert client.config["score_source"] == "from VaR utilisation alone (no full snapshot yet)"
    limit = 0.05 * float(client.gross_exposure)
    assert client.risk_score == pytest.approx(min(float(client.var) / limit, 1.0), rel=1e-6)
    # A later quick pass still copies the score from the full snapshot, not from a quick one.
    again = RiskSnapshot.objects.get(pk=tasks.recalculate_all_quick()[0])
    assert again.config["score_source"] == desk_quick.config["score_source"]


def test_a_portfolio_whose_inputs_fail_is_left_out_and_logged(desk, monkeypatch, caplog):
    from apps.risk import inputs as risk_inputs

    original = risk_inputs._build

    def fragile(*, portfolio, **kwargs):
        if portfolio.code == "USDCLIENT":
            raise ValueError("bad reference data")
        return original(portfolio=portfolio, **kwargs)

    monkeypatch.setattr(risk_inputs, "_build", fragile)
    ids = services.risk_recalculate_all(quick=True)
    codes = set(RiskSnapshot.objects.filter(pk__in=ids).values_list("portfolio__code", flat=True))
    assert codes == {"DESK", "EURCLIENT"}
    assert "Risk recalculation of USDCLIENT failed" in caplog.text
    with pytest.raises(ValueError, match="bad reference data"):
        portfolios_inputs(portfolios=Portfolio.objects.filter(code="USDCLIENT"))


def test_recalc_risk_all_quick_prints_the_table(desk):
    out = StringIO()
    call_command("recalc_risk", "--all", "--quick", stdout=out, stderr=out)
    lines = out.getvalue().splitlines()
    assert lines[0].split()[:3] == ["portfolio", "ccy", "market"]
    assert [line.split()[0] for line in lines[2:] if line and not line.startswith(("    !", "Quick"))] == [
        "DESK",
        "EURCLIENT",
        "USDCLIENT",
    ]
    assert lines[-1] == "Quick pass: 3 light snapshots (historical VaR and ES only)."
    assert RiskSnapshot.objects.filter(kind=SnapshotKind.ON_DEMAND, config__quick=True).count() == 3
    with pytest.raises(CommandError, match="--quick goes with --all"):
        call_command("recalc_risk", "--portfolio", "DESK", "--quick", stdout=out, stderr=out)
