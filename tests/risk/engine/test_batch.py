"""Batch VaR of many portfolios: linear pass and full revaluation."""

from dataclasses import replace

import numpy as np
from numpy.testing import assert_allclose

from apps.risk.engine.batch import compute_batch_historical, compute_batch_var, compute_batch_var_full
from apps.risk.engine.portfolio import compute_portfolio_risk
from apps.risk.engine.types import EngineConfig, Holding, MarketData
from apps.risk.engine.var import historical_var_es


def test_batch_var_equals_per_portfolio_historical_var():
    rng = np.random.default_rng(9)
    exposures = rng.normal(0, 1e5, (30, 12)) * (rng.random((30, 12)) < 0.4)
    returns = rng.standard_t(4, (250, 12)) * 0.01
    out = compute_batch_var(holdings_matrix=exposures, factor_returns=returns, confidence_levels=(0.95, 0.99))
    for level, (var, es) in out.items():
        assert var.shape == es.shape == (30,)
        for k in range(30):
            v, e = historical_var_es(returns @ exposures[k], confidence=level)
            assert_allclose([var[k], es[k]], [v, e])
        assert np.all(es >= var)


def test_full_batch_matches_the_linear_batch_for_linear_portfolios():
    rng = np.random.default_rng(10)
    symbols = ["A", "B", "C"]
    log_moves = rng.normal(0, 0.02, (200, 3))
    portfolios = [
        [Holding("A", "equity", 10.0, 1.0, 100.0, "INR", 1.0), Holding("C", "equity", -5.0, 1.0, 40.0, "INR", 1.0)],
        [Holding("B", "crypto", 2.0, 1.0, 300.0, "INR", 1.0)],
        [],
    ]
    exposures = np.array([[1000.0, 0.0, -200.0], [0.0, 600.0, 0.0], [0.0, 0.0, 0.0]])
    fast = compute_batch_var(holdings_matrix=exposures, factor_returns=np.expm1(log_moves), confidence_levels=(0.99,))
    full = compute_batch_var_full(portfolios=portfolios, symbols=symbols, moves=log_moves, confidence_levels=(0.99,))
    assert_allclose(full[0.99][0], fast[0.99][0], atol=1e-9)
    assert_allclose(full[0.99][1], fast[0.99][1], atol=1e-9)


def test_sparse_exposures_give_the_same_figures_as_dense():
    from scipy import sparse

    rng = np.random.default_rng(12)
    exposures = rng.normal(0, 1e5, (40, 30)) * (rng.random((40, 30)) < 0.2)
    returns = rng.normal(0, 0.01, (120, 30))
    dense = compute_batch_var(holdings_matrix=exposures, factor_returns=returns, confidence_levels=(0.99,))
    sp = compute_batch_var(
        holdings_matrix=sparse.csr_array(exposures), factor_returns=returns, confidence_levels=(0.99,)
    )
    assert_allclose(sp[0.99][0], dense[0.99][0])
    assert_allclose(sp[0.99][1], dense[0.99][1])


# ------------------------------------------------------------------------------ compute_batch_historical


def _desk_market() -> tuple[MarketData, np.ndarray, np.ndarray]:
    """Return a market over calendar days (weekday series, a 7-day crypto series, FX, a short series) and the
    weekday and every-day calendars."""
    rng = np.random.default_rng(21)
    dates = np.arange(np.datetime64("2025-01-01"), np.datetime64("2026-06-30"))
    weekday = np.is_busday(dates)
    n = len(dates)

    def walk(start: float, vol: float) -> np.ndarray:
        return start * np.exp(np.cumsum(rng.normal(0, vol / np.sqrt(252), n)))

    series = {
        "BOND1": 101 + np.cumsum(rng.normal(0, 0.05, n)),
        "BTC": walk(60_000, 0.6),
        "EQ1": walk(2_900, 0.25),
        "EQ2": walk(190, 0.3),
        "FX:INR/EUR": walk(0.011, 0.06),
        "FX:USD/EUR": walk(0.92, 0.07),
        "FX:USD/INR": walk(83, 0.05),
        "IDX": walk(24_000, 0.15),
        "SHORT": walk(50, 0.3),
    }
    for name, values in series.items():
        if name != "BTC":
            values[~weekday] = np.nan
    series["EQ2"][np.flatnonzero(weekday)[-40]] = np.nan  # a holiday of one market
    series["SHORT"][:-30] = np.nan  # too little history: left out of the scenarios
    symbols = tuple(series)
    market = MarketData(dates=dates, symbols=symbols, prices=np.column_stack([series[s] for s in symbols]))
    return market, dates[weekday], dates


def _desk_portfolios(market: MarketData) -> list[list[Holding]]:
    last = {
        s: float(market.prices[np.flatnonzero(np.isfinite(market.prices[:, j]))[-1], j])
        for j, s in enumerate(market.symbols)
    }
    idx = last["IDX"]

    def eq(key, qty, ccy="INR", fx=1.0, fx_symbol=None, asset_class="equity"):
        return Holding(key, asset_class, qty, 1.0, last[key], ccy, fx, fx_symbol)

    def option(key, qty, kind, strike, vol=None, base_fx=1.0, fx_symbol=None, ccy="INR"):
        return Holding(
            key,
            "option",
            qty,
            25.0,
            300.0,
            ccy,
            base_fx,
            fx_symbol,
            underlying="IDX",
            underlying_price=idx,
            option_type=kind,
            strike=strike,
            expiry_years=0.2,
            implied_vol=vol,
            rate=0.06,
        )

    future = Holding("IDXFUT", "future", 2.0, 25.0, idx * 1.004, "INR", 1.0, None, "IDX", idx, expiry_years=0.08)
    bond = Holding(
        "BOND1",
        "bond",
        1_000.0,
        1.0,
        last["BOND1"],
        "INR",
        1.0,
        coupon_rate=0.07,
        coupon_frequency=2,
        maturity_years=8.1,
        face_value=100.0,
    )
    bond_future = Holding("BONDFUT", "future", 3.0, 10.0, last["BOND1"], "INR", 1.0, None, "BOND1", last["BOND1"])
    usd_inr, usd_eur, inr_eur = last["FX:USD/INR"], last["FX:USD/EUR"], last["FX:INR/EUR"]
    return [
        # INR desk: equity, a short call and a future on the index, a bond, a US equity.
        [eq("EQ1", 70), option("IDXC", -4, "C", 24_000), future, bond, eq("EQ2", 50, "USD", usd_inr, "FX:USD/INR")],
        # EUR client: the same instruments seen from EUR, a put with a given vol.
        [
            eq("EQ2", 10, "USD", usd_eur, "FX:USD/EUR"),
            eq("EQ1", 5, "INR", inr_eur, "FX:INR/EUR"),
            option("IDXP", 3, "P", 23_000, 0.18, inr_eur, "FX:INR/EUR"),
        ],
        # USD client with crypto: its own, every-day calendar.
        [eq("BTC", 0.5, "USD", asset_class="crypto"), eq("EQ2", -20, "USD")],
        # A position without enough history (zero P&L, still in the window test) next to a normal one.
        [eq("SHORT", 100), eq("EQ1", 30)],
        [],
        # A future on the bond, without the bond: its column stays log returns here.
        [bond_future, eq("EQ1", 10), option("IDXC", 2, "C", 24_500)],
        # Nothing usable: every figure is zero.
        [eq("SHORT", 10)],
    ]


def test_batch_historical_equals_compute_portfolio_risk_for_every_portfolio():
    market, weekdays, every_day = _desk_market()
    portfolios = _desk_portfolios(market)
    calendars = [weekdays, weekdays, every_day, weekdays, weekdays, weekdays, weekdays]
    config = EngineConfig(lookback_days=250, methods=("historical",), confidence_levels=(0.95, 0.99))
    batch = compute_batch_historical(
        market=market, config=config, portfolios=portfolios, calendars=calendars, horizons=(1, 10)
    )
    assert batch.var.shape == (2, 2, len(portfolios))
    as_of = np.datetime64("2026-06-29")
    for k, holdings in enumerate(portfolios):
        own = MarketData(
            dates=calendars[k],
            symbols=market.symbols,
            prices=market.prices[np.isin(market.dates, calendars[k])],
        )
        for i, h in enumerate((1, 10)):
            ref = compute_portfolio_risk(
                holdings=holdings, market=own, config=replace(config, horizon_days=h), as_of=as_of
            )
            expected = [(f.var, f.es) for f in ref.var]
            got = [(f.var, f.es) for f in batch.figures(k) if f.horizon_days == h]
            assert_allclose(got, expected, rtol=1e-10, atol=1e-6, err_msg=f"portfolio {k}, horizon {h}")
            assert batch.scenario_days[i, k] == ref.scenario_days
        net, gross = ref.market_value, ref.gross_exposure
        assert_allclose([batch.market_value[k], batch.gross_exposure[k]], [net, gross])
    assert (batch.var[:, :, [0, 1, 2, 3, 5]] > 0).all()
    assert (batch.var[:, :, [4, 6]] == 0).all()
    # On the shared calendar the weekday portfolios would get forward-filled weekend days: other figures.
    shared = compute_batch_historical(market=market, config=config, portfolios=portfolios[:1])
    assert not np.isclose(shared.var[0, 0, 0], batch.var[0, 0, 0])


def test_batch_historical_without_calendars_uses_every_date():
    market, weekdays, _ = _desk_market()
    weekday_market = MarketData(
        dates=weekdays, symbols=market.symbols, prices=market.prices[np.isin(market.dates, weekdays)]
    )
    portfolios = _desk_portfolios(market)[:2]
    config = EngineConfig(lookback_days=200, methods=("historical",))
    batch = compute_batch_historical(market=weekday_market, config=config, portfolios=portfolios)
    for k, holdings in enumerate(portfolios):
        ref = compute_portfolio_risk(holdings=holdings, market=weekday_market, config=config, as_of=weekdays[-1])
        assert_allclose([(f.var, f.es) for f in batch.figures(k)], [(f.var, f.es) for f in ref.var], rtol=1e-10)
