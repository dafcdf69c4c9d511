"""Hypothetical and historical stress tests by full revaluation."""

import numpy as np
from numpy.testing import assert_allclose

from apps.risk.engine import black76, bonds, returns
from apps.risk.engine.stress import BUILTIN_SHOCKS, historical_stress, infer_base_currency, stress_test
from apps.risk.engine.types import Holding, MarketData, StressShock

USD_INR = 83.0
AAPL = Holding("AAPL", "equity", 10.0, 1.0, 200.0, "USD", USD_INR, fx_symbol="FX:USD/INR")
RELIANCE = Holding("RELIANCE", "equity", 4.0, 1.0, 2500.0, "INR", 1.0)


def test_builtin_shocks_are_named_as_listed():
    assert [s.name for s in BUILTIN_SHOCKS] == [
        "Equities -20%",
        "Rates +200bp",
        "Volatility x2",
        "Crypto -50%",
        "Rupee -10%",
        "Dollar -10%",
    ]


def test_rupee_weakening_is_a_gain_on_a_usd_asset_in_an_inr_portfolio():
    """A -10% INR shock: each USD now buys 1/0.9 as many rupees, so the USD asset gains 11.1% in INR."""
    (rupee,) = stress_test([AAPL, RELIANCE], [StressShock("Rupee -10%", currency={"INR": -0.10})])
    value = AAPL.market_value
    assert rupee.pnl > 0
    assert_allclose(rupee.by_position["AAPL"], value * (1 / 0.9 - 1))
    assert rupee.by_position["RELIANCE"] == 0.0


def test_dollar_weakening_is_a_loss_on_a_usd_asset_in_an_inr_portfolio():
    (dollar,) = stress_test([AAPL, RELIANCE], [StressShock("Dollar -10%", currency={"USD": -0.10})])
    assert_allclose(dollar.pnl, -0.10 * AAPL.market_value)


def test_foreign_position_without_an_fx_series_still_takes_currency_shocks():
    h = Holding("MSFT", "equity", 1.0, 1.0, 400.0, "USD", USD_INR)
    (res,) = stress_test([h, RELIANCE], [StressShock("x", currency={"USD": 0.05})])
    assert infer_base_currency([h, RELIANCE]) == "INR"
    assert_allclose(res.pnl, 0.05 * h.market_value)


def test_equity_shock_moves_equities_and_options_on_equity_underlyings_but_not_crypto():
    opt = Holding(
        "NIFTY-P",
        "option",
        2.0,
        25.0,
        150.0,
        "INR",
        1.0,
        underlying="NIFTY",
        underlying_price=22000.0,
        option_type="P",
        strike=21000.0,
        expiry_years=0.1,
        implied_vol=0.2,
        rate=0.06,
    )
    btc = Holding("BTC-USD", "crypto", 1.0, 1.0, 60000.0, "USD", USD_INR, fx_symbol="FX:USD/INR")
    (res,) = stress_test([RELIANCE, opt, btc], [BUILTIN_SHOCKS[0]])
    assert_allclose(res.by_position["RELIANCE"], -0.2 * RELIANCE.market_value)
    t = 0.1
    v0 = black76.price(22000.0 * np.exp(0.06 * t), 21000.0, t, 0.2, 0.06, False)
    v1 = black76.price(0.8 * 22000.0 * np.exp(0.06 * t), 21000.0, t, 0.2, 0.06, False)
    assert_allclose(res.by_position["NIFTY-P"], (v1 - v0) * 50.0)
    assert res.by_position["BTC-USD"] == 0.0
    (crypto,) = stress_test([RELIANCE, btc], [BUILTIN_SHOCKS[3]])
    assert_allclose(crypto.by_position["BTC-USD"], -0.5 * btc.market_value)
    assert_allclose(crypto.pnl_fraction, crypto.pnl / (RELIANCE.market_value + btc.market_value))


def test_rates_shock_reprices_bonds_with_duration_and_convexity():
    price = float(bonds.price_from_yield(0.07, 0.07, 2, 10.0)[0])
    gsec = Holding(
        "GSEC", "bond", 100.0, 1.0, price, "INR", 1.0, coupon_rate=0.07, coupon_frequency=2, maturity_years=10.0
    )
    (res,) = stress_test([gsec], [BUILTIN_SHOCKS[1]])
    full = (bonds.price_from_yield(0.09, 0.07, 2, 10.0)[0] - price) * 100.0
    assert res.pnl < 0
    assert_allclose(res.pnl, full, rtol=1e-2)


def test_vol_shock_helps_a_long_option_and_symbol_overrides_win():
    opt = Holding(
        "C",
        "option",
        1.0,
        1.0,
        5.0,
        "INR",
        1.0,
        underlying="X",
        underlying_price=100.0,
        option_type="C",
        strike=100.0,
        expiry_years=0.5,
        implied_vol=0.2,
    )
    results = stress_test(
        [opt, RELIANCE], [BUILTIN_SHOCKS[2], StressShock("one name", equity=-0.2, symbols={"RELIANCE": -0.5})]
    )
    assert results[0].pnl > 0
    assert_allclose(results[1].by_position["RELIANCE"], -0.5 * RELIANCE.market_value)


def test_historical_stress_replays_the_worst_windows_of_the_current_portfolio():
    rng = np.random.default_rng(4)
    n = 300
    dates = np.datetime64("2024-01-01") + np.arange(n).astype("timedelta64[D]")
    prices = np.column_stack(
        [
            2500 * np.exp(np.cumsum(rng.normal(0, 0.01, n))),
            200 * np.exp(np.cumsum(rng.normal(0, 0.02, n))),
            83 * np.exp(np.cumsum(rng.normal(0, 0.003, n))),
        ]
    )
    market = MarketData(dates=dates, symbols=("RELIANCE", "AAPL", "FX:USD/INR"), prices=prices)
    results = historical_stress([RELIANCE, AAPL], market, windows=(1, 10))
    assert [r.name for r in results] == ["Worst 1-day historical", "Worst 10-day historical"]
    r = returns.to_returns(prices)
    for res, w in zip(results, (1, 10), strict=True):
        h = returns.horizon_returns(r, horizon=w)
        brute = RELIANCE.market_value * np.expm1(h[:, 0]) + AAPL.market_value * np.expm1(h[:, 1] + h[:, 2])
        i = int(np.argmin(brute))
        assert_allclose(res.pnl, brute[i])
        assert res.kind == "historical"
        assert str(dates[i]) in res.detail and str(dates[i + w]) in res.detail


def test_rupee_weakening_is_a_gain_on_a_long_usdinr_pair_in_a_usd_portfolio():
    """Long 1m USDINR is long dollars against rupees: a 10% weaker rupee gains 1m x (1 - 1/1.1)."""
    pair = Holding("USDINR", "fx", 1_000_000.0, 1.0, 83.0, "INR", 1 / 83.0, fx_symbol="FX:INR/USD")
    [result] = stress_test([pair], [StressShock("Rupee -10%", currency={"INR": -0.1})], base_currency="USD")
    assert_allclose(result.pnl, 1_000_000.0 * (1 - 0.9), rtol=1e-9)
