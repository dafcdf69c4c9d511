"""End-to-end figures of compute_portfolio_risk on a synthetic INR-based market."""

from dataclasses import replace

import numpy as np
import pytest
from numpy.testing import assert_allclose

from apps.risk.engine import bonds, var
from apps.risk.engine.portfolio import WARN_EMPTY, compute_portfolio_risk, fill_implied_vols, what_if
from apps.risk.engine.stress import BUILTIN_SHOCKS
from apps.risk.engine.types import EngineConfig, Holding, MarketData, StressShock

N_DAYS = 520
METHODS = ("historical", "parametric", "cornish_fisher", "monte_carlo")


def synthetic_market(seed: int = 7, n_days: int = N_DAYS) -> MarketData:
    """Return closes for INR and USD equities, an index, crypto, a bond, USD/INR and a short series."""
    rng = np.random.default_rng(seed)
    dates = np.datetime64("2024-01-01") + np.arange(n_days).astype("timedelta64[D]")
    vols = np.array([0.018, 0.012, 0.02, 0.04, 0.005, 0.015])
    corr = np.full((6, 6), 0.3) + 0.7 * np.eye(6)
    chol = np.linalg.cholesky(corr * np.outer(vols, vols))
    r = rng.standard_normal((n_days - 1, 6)) @ chol.T
    start = np.array([2500.0, 22000.0, 190.0, 60000.0, 83.0, 3800.0])
    paths = start * np.exp(np.vstack([np.zeros(6), np.cumsum(r, axis=0)]))
    yields = 0.07 + np.concatenate([[0.0], np.cumsum(rng.normal(0, 0.0005, n_days - 1))])
    bond = bonds.price_from_yield(yields, np.full(n_days, 0.072), np.full(n_days, 2), np.full(n_days, 7.5))
    short = paths[:, 5].copy()
    short[:-40] = np.nan  # TCS listed 40 days ago: too short for the scenarios
    prices = np.column_stack([paths[:, 0], paths[:, 1], paths[:, 2], paths[:, 3], paths[:, 4], bond, short])
    symbols = ("RELIANCE", "NIFTY", "AAPL", "BTC-USD", "FX:USD/INR", "GSEC2031", "TCS")
    return MarketData(dates=dates, symbols=symbols, prices=prices)


def synthetic_holdings(market: MarketData) -> list[Holding]:
    last = dict(zip(market.symbols, market.prices[-1], strict=True))
    usd = last["FX:USD/INR"]
    nifty = last["NIFTY"]
    return [
        Holding("RELIANCE", "equity", 100.0, 1.0, last["RELIANCE"], "INR", 1.0),
        Holding("TCS", "equity", 50.0, 1.0, last["TCS"], "INR", 1.0),
        Holding("NIFTY", "index", 2.0, 1.0, nifty, "INR", 1.0),
        Holding("AAPL", "equity", 300.0, 1.0, last["AAPL"], "USD", usd, fx_symbol="FX:USD/INR"),
        Holding("BTC-USD", "crypto", 0.5, 1.0, last["BTC-USD"], "USD", usd, fx_symbol="FX:USD/INR"),
        Holding(
            "NIFTYFUT",
            "future",
            1.0,
            25.0,
            nifty * 1.005,
            "INR",
            1.0,
            underlying="NIFTY",
            underlying_price=nifty,
            expiry_years=0.08,
        ),
        Holding(
            "NIFTY-C",
            "option",
            4.0,
            25.0,
            300.0,
            "INR",
            1.0,
            underlying="NIFTY",
            underlying_price=nifty,
            option_type="C",
            strike=round(nifty, -2),
            expiry_years=0.1,
            rate=0.065,
        ),
        Holding(
            "NIFTY-P",
            "option",
            -3.0,
            25.0,
            250.0,
            "INR",
            1.0,
            underlying="NIFTY",
            underlying_price=nifty,
            option_type="P",
            strike=round(nifty * 0.95, -2),
            expiry_years=0.1,
            implied_vol=0.18,
            rate=0.065,
        ),
        Holding(
            "GSEC2031",
            "bond",
            1000.0,
            1.0,
            last["GSEC2031"],
            "INR",
            1.0,
            coupon_rate=0.072,
            coupon_frequency=2,
            maturity_years=7.5,
            face_value=100.0,
        ),
        Holding("FX:USD/INR", "fx", 1000.0, 1.0, usd, "INR", 1.0),
    ]


@pytest.fixture(scope="module")
def market() -> MarketData:
    return synthetic_market()


@pytest.fixture(scope="module")
def result(market):
    return compute_portfolio_risk(
        holdings=synthetic_holdings(market),
        market=market,
        config=EngineConfig(),
        as_of=market.dates[-1],
        benchmark="NIFTY",
        shocks=[StressShock("Nifty crash", symbols={"NIFTY": -0.3})],
    )


def test_every_method_and_level_is_reported_with_es_at_least_var(result):
    config = EngineConfig()
    pairs = [(f.method, f.confidence) for f in result.var]
    assert pairs == [(m, c) for m in METHODS for c in config.confidence_levels]
    for f in result.var:
        assert f.var > 0 and f.es >= f.var and f.horizon_days == 1
    by = {(f.method, f.confidence): f.var for f in result.var}
    for m in METHODS:
        assert by[(m, 0.99)] > by[(m, 0.95)]


def test_component_vars_sum_to_the_historical_var(result):
    hist = next(f for f in result.var if f.method == "historical" and f.confidence == 0.95)
    assert_allclose(sum(p.component_var for p in result.positions), hist.var, rtol=1e-9)
    assert_allclose(sum(result.by_asset_class.values()), hist.var, rtol=1e-9)
    assert_allclose(sum(result.by_currency.values()), hist.var, rtol=1e-9)


def test_too_short_series_is_warned_about_and_valued_but_left_out(result):
    assert any(w.startswith("TCS: 39 days of history") for w in result.warnings)
    assert any(w.startswith("TCS: position valued at") for w in result.warnings)
    tcs = next(p for p in result.positions if p.key == "TCS")
    assert tcs.market_value > 0 and tcs.component_var == 0.0 and tcs.standalone_var == 0.0
    assert result.scenario_days == 500


def test_stats_greeks_stress_and_score_are_filled(result):
    assert result.stats is not None and result.stats.beta is not None and result.stats.annual_volatility > 0
    assert {g.underlying for g in result.greeks} >= {"NIFTY", "AAPL", "BTC-USD"}
    names = [s.name for s in result.stress]
    assert names[: len(BUILTIN_SHOCKS)] == [s.name for s in BUILTIN_SHOCKS]
    assert "Nifty crash" in names and "Worst 1-day historical" in names and "Worst 10-day historical" in names
    rupee = next(s for s in result.stress if s.name == "Rupee -10%")
    assert rupee.pnl > 0  # long USD assets in an INR book gain when the rupee weakens
    assert 0.0 <= result.score.score <= 1.0
    assert set(result.score.features) >= {"var_utilisation", "volatility_regime", "concentration", "drawdown", "gamma"}
    assert_allclose(
        result.market_value, sum(p.market_value for p in result.positions if p.asset_class not in ("future", "fx"))
    )


def test_long_only_equity_portfolio_var_is_the_quantile_of_its_pnl(market):
    holdings = [h for h in synthetic_holdings(market) if h.key in ("RELIANCE", "NIFTY")]
    res = compute_portfolio_risk(holdings=holdings, market=market, config=EngineConfig(), as_of=market.dates[-1])
    r = np.diff(np.log(market.prices[:, :2]), axis=0)[-500:]
    pnl = np.expm1(r) @ np.array([h.market_value for h in holdings])
    for f in res.var:
        if f.method == "historical":
            assert_allclose([f.var, f.es], var.historical_var_es(pnl, confidence=f.confidence))
            assert_allclose(f.var, -np.sort(pnl)[int(np.ceil(500 * (1 - f.confidence) - 1e-9)) - 1])


def test_ten_day_horizon_uses_overlapping_windows(market):
    holdings = [h for h in synthetic_holdings(market) if h.key == "RELIANCE"]
    res = compute_portfolio_risk(
        holdings=holdings, market=market, config=EngineConfig(horizon_days=10), as_of=market.dates[-1]
    )
    assert res.scenario_days == 491
    r = np.diff(np.log(market.prices[:, 0]))[-500:]
    h10 = np.convolve(r, np.ones(10), mode="valid")
    expected = var.historical_var_es(holdings[0].market_value * np.expm1(h10), confidence=0.99)
    got = next(f for f in res.var if f.method == "historical" and f.confidence == 0.99)
    assert_allclose([got.var, got.es], expected)


def test_monte_carlo_is_reproducible_with_the_seed(market):
    holdings = synthetic_holdings(market)
    config = EngineConfig(mc_paths=2000, methods=("monte_carlo",), mc_distribution="t")
    a = compute_portfolio_risk(holdings=holdings, market=market, config=config, as_of=market.dates[-1])
    b = compute_portfolio_risk(holdings=holdings, market=market, config=config, as_of=market.dates[-1])
    assert [f.var for f in a.var] == [f.var for f in b.var]


def test_empty_portfolio_gives_zeros_and_a_warning(market):
    res = compute_portfolio_risk(holdings=[], market=market, config=EngineConfig(), as_of=market.dates[-1])
    assert res.warnings == [WARN_EMPTY]
    assert all(f.var == 0.0 and f.es == 0.0 for f in res.var)
    assert len(res.var) == 8 and res.positions == [] and res.market_value == 0.0


def test_position_without_a_price_series_is_reported_not_dropped(market):
    extra = Holding("INFY", "equity", 10.0, 1.0, 1500.0, "INR", 1.0)
    res = compute_portfolio_risk(
        holdings=[synthetic_holdings(market)[0], extra], market=market, config=EngineConfig(), as_of=market.dates[-1]
    )
    assert any(w.startswith("INFY: position valued at 15,000") for w in res.warnings)
    assert [p.key for p in res.positions] == ["RELIANCE", "INFY"]


def test_what_if_returns_before_and_after(market):
    holdings = synthetic_holdings(market)[:3]
    extra = [synthetic_holdings(market)[3]]
    before, after = what_if(
        holdings=holdings, extra=extra, market=market, config=EngineConfig(), as_of=market.dates[-1]
    )
    assert len(before.positions) == 3 and len(after.positions) == 4
    assert after.gross_exposure > before.gross_exposure


def test_fill_implied_vols_estimates_missing_vols_from_the_underlying(market):
    holdings = synthetic_holdings(market)
    filled, warnings = fill_implied_vols(holdings, market, config=EngineConfig())
    call = next(h for h in filled if h.key == "NIFTY-C")
    put = next(h for h in filled if h.key == "NIFTY-P")
    assert 0.05 < call.implied_vol < 0.5 and put.implied_vol == 0.18 and warnings == []
    assert replace(call, implied_vol=None) == next(h for h in holdings if h.key == "NIFTY-C")


def test_no_usable_history_gives_zero_figures_and_warnings_not_an_exception(market):
    empty = MarketData(dates=market.dates[:0], symbols=(), prices=np.zeros((0, 0)))
    res = compute_portfolio_risk(
        holdings=synthetic_holdings(market), market=empty, config=EngineConfig(), as_of=market.dates[-1]
    )
    assert all(f.var == 0.0 for f in res.var) and res.scenario_days == 0
    assert any(w.startswith("RELIANCE: position valued at") for w in res.warnings)
    assert [s.kind for s in res.stress] == ["hypothetical"] * len(BUILTIN_SHOCKS)


def test_market_neutral_book_is_measured_against_gross_exposure(market):
    nifty = float(market.prices[-1, 1])
    holdings = [
        Holding("RELIANCE", "equity", 100.0, 1.0, 2500.0, "INR", 1.0),
        Holding("NIFTY", "index", -100 * 2500.0 / nifty, 1.0, nifty, "INR", 1.0),
    ]
    res = compute_portfolio_risk(
        holdings=holdings, market=market, config=EngineConfig(horizon_days=5), as_of=market.dates[-1]
    )
    assert abs(res.market_value) < 1e-6 and res.gross_exposure == pytest.approx(500_000.0)
    assert all(f.var > 0 and f.es >= f.var for f in res.var)
    assert res.stats is not None and np.isfinite(res.stats.annual_volatility)


def test_option_without_time_to_expiry_is_warned_about(market):
    nifty = float(market.prices[-1, 1])
    opt = Holding(
        "X",
        "option",
        1.0,
        1.0,
        50.0,
        "INR",
        1.0,
        underlying="NIFTY",
        underlying_price=nifty,
        option_type="P",
        strike=nifty + 50.0,
    )
    res = compute_portfolio_risk(holdings=[opt], market=market, config=EngineConfig(), as_of=market.dates[-1])
    assert "X: option has no time to expiry; valued at its intrinsic value, no Greeks" in res.warnings
