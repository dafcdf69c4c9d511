"""The live pass (engine.batch.compute_batch_live): every figure it gives equals compute_portfolio_risk's."""

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from apps.risk.engine.batch import LIVE_METHODS, compute_batch_live_holdings
from apps.risk.engine.portfolio import compute_portfolio_risk
from apps.risk.engine.types import EngineConfig, Holding, MarketData, StressShock
from tests.risk.engine.test_batch import _desk_market, _desk_portfolios

AS_OF = np.datetime64("2026-06-29")


def _own_market(market: MarketData, calendar: np.ndarray) -> MarketData:
    return MarketData(dates=calendar, symbols=market.symbols, prices=market.prices[np.isin(market.dates, calendar)])


def _assert_same_result(got, ref, label: str) -> None:
    """Assert a live result equals compute_portfolio_risk's, Monte Carlo and stress aside."""
    expected = [(f.method, f.confidence, f.horizon_days) for f in ref.var if f.method in LIVE_METHODS]
    assert [(f.method, f.confidence, f.horizon_days) for f in got.var] == expected, label
    assert_allclose(
        [(f.var, f.es) for f in got.var],
        [(f.var, f.es) for f in ref.var if f.method in LIVE_METHODS],
        rtol=1e-9,
        atol=1e-6,
        err_msg=label,
    )
    assert_allclose([got.market_value, got.gross_exposure], [ref.market_value, ref.gross_exposure], err_msg=label)
    assert got.scenario_days == ref.scenario_days, label
    if ref.stats is None:
        assert got.stats is None, label
    else:
        for field in ref.stats.__dataclass_fields__:
            a, b = getattr(got.stats, field), getattr(ref.stats, field)
            if b is None:
                assert a is None, f"{label} {field}"
            else:
                assert_allclose(a, b, rtol=1e-9, atol=1e-12, err_msg=f"{label} {field}")
    assert [p.key for p in got.positions] == [p.key for p in ref.positions], label
    for name in ("market_value", "weight", "standalone_var", "marginal_var", "component_var", "incremental_var"):
        assert_allclose(
            [getattr(p, name) for p in got.positions],
            [getattr(p, name) for p in ref.positions],
            rtol=1e-9,
            atol=1e-6,
            err_msg=f"{label} {name}",
        )
    assert list(got.by_asset_class) == list(ref.by_asset_class) and list(got.by_currency) == list(ref.by_currency)
    assert_allclose(list(got.by_asset_class.values()), list(ref.by_asset_class.values()), rtol=1e-9, atol=1e-6)
    assert [g.underlying for g in got.greeks] == [g.underlying for g in ref.greeks], label
    for name in ("delta", "gamma", "vega", "theta", "rho", "delta_cash"):
        assert_allclose(
            [getattr(g, name) for g in got.greeks],
            [getattr(g, name) for g in ref.greeks],
            rtol=1e-9,
            atol=1e-9,
            err_msg=f"{label} {name}",
        )
    assert got.score.severity == ref.score.severity, label
    assert_allclose(got.score.score, ref.score.score, rtol=1e-9, atol=1e-12, err_msg=label)
    assert list(got.score.features) == list(ref.score.features), label
    assert_allclose(list(got.score.features.values()), list(ref.score.features.values()), rtol=1e-9, atol=1e-12)
    assert sorted(got.warnings) == sorted(ref.warnings), label
    assert [(s.name, s.kind, s.detail) for s in got.stress] == [(s.name, s.kind, s.detail) for s in ref.stress], label
    assert_allclose(
        [(s.pnl, s.pnl_fraction) for s in got.stress],
        [(s.pnl, s.pnl_fraction) for s in ref.stress],
        rtol=1e-9,
        atol=1e-6,
    )
    for a, b in zip(got.stress, ref.stress, strict=True):
        assert list(a.by_position) == list(b.by_position), f"{label} {a.name}"
        assert_allclose(list(a.by_position.values()), list(b.by_position.values()), rtol=1e-9, atol=1e-6)


@pytest.mark.parametrize("horizon", [1, 10])
def test_the_live_pass_gives_every_portfolio_what_compute_portfolio_risk_gives_it(horizon):
    market, weekdays, every_day = _desk_market()
    portfolios = _desk_portfolios(market)
    calendars = [weekdays, weekdays, every_day, weekdays, weekdays, weekdays, weekdays]
    benchmarks = ["IDX", None, "EQ1", None, "IDX", "EQ2", None]
    config = EngineConfig(lookback_days=250, confidence_levels=(0.95, 0.99), horizon_days=horizon)
    shocks = [
        StressShock(name="Own", equity=-0.1, crypto=-0.3, vol_multiplier=1.5, currency={"EUR": 0.05}),
        StressShock(name="One series", symbols={"IDX": -0.15, "BTC": 0.2}, rates_bp=-50),
    ]
    live = compute_batch_live_holdings(
        market=market,
        config=config,
        portfolios=portfolios,
        calendars=calendars,
        benchmarks=benchmarks,
        shocks=shocks,
        asset_classes={"IDX": "index", "BOND1": "bond"},
    )
    assert live.methods == ("historical", "parametric", "cornish_fisher")
    for k, holdings in enumerate(portfolios):
        ref = compute_portfolio_risk(
            holdings=holdings,
            market=_own_market(market, calendars[k]),
            config=config,
            as_of=AS_OF,
            benchmark=benchmarks[k],
            shocks=shocks,
        )
        _assert_same_result(live.result(k, as_of=AS_OF), ref, f"portfolio {k}, horizon {horizon}")
    assert (live.var[:, :, [0, 1, 2, 3, 5]] > 0).all()
    assert (live.var[:, :, [4, 6]] == 0).all()


def test_quantities_scale_the_shared_unit_revaluation():
    """Two portfolios holding the same instruments in other amounts share one revaluation and still differ."""
    market, weekdays, _ = _desk_market()
    first = _desk_portfolios(market)[0]
    doubled = [replace(h, quantity=h.quantity * 2) for h in first]
    config = EngineConfig(lookback_days=250)
    live = compute_batch_live_holdings(
        market=market, config=config, portfolios=[first, doubled], calendars=[weekdays] * 2
    )
    assert len(live.units) == len(first)
    assert_allclose(live.var[:, :, 1], 2 * live.var[:, :, 0], rtol=1e-9)
    assert live.scores[0].score == pytest.approx(live.scores[1].score)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sizes=st.lists(
        st.lists(st.floats(min_value=-4.0, max_value=4.0, allow_nan=False), min_size=4, max_size=4),
        min_size=2,
        max_size=24,
    )
)
def test_incremental_var_of_positions_of_every_size_equals_the_portfolio_s_own(sizes):
    """Positions from a thousandth to ten thousand times their neighbours' size: the live pass looks at each
    one's own number of worst scenarios, in steps of like needs, and must find what the full recalculation finds.
    """
    market, weekdays, _ = _desk_market()
    last = {
        s: float(market.prices[np.flatnonzero(np.isfinite(market.prices[:, j]))[-1], j])
        for j, s in enumerate(market.symbols)
    }
    symbols = ("BTC", "EQ1", "EQ2", "IDX")
    portfolios = [
        [Holding(s, "equity", 10.0**e, 1.0, last[s], "INR", 1.0) for s, e in zip(symbols, exponents, strict=True)]
        for exponents in sizes
    ]
    config = EngineConfig(lookback_days=250, methods=("historical",), include_stress=False)
    live = compute_batch_live_holdings(
        market=market, config=config, portfolios=portfolios, calendars=[weekdays] * len(portfolios)
    )
    for k, holdings in enumerate(portfolios):
        ref = compute_portfolio_risk(
            holdings=holdings, market=_own_market(market, weekdays), config=config, as_of=AS_OF
        )
        got = live.result(k, as_of=AS_OF)
        assert_allclose(
            [p.incremental_var for p in got.positions],
            [p.incremental_var for p in ref.positions],
            rtol=1e-9,
            atol=1e-9 * max(1.0, ref.gross_exposure),
            err_msg=f"portfolio {k}",
        )
