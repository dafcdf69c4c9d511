"""Portfolio Greeks by underlying and the spot x vol ladder."""

import numpy as np
from numpy.testing import assert_allclose

from apps.risk.engine import black76, revalue
from apps.risk.engine.greeks import gamma_pnl, portfolio_greeks, spot_vol_ladder
from apps.risk.engine.types import Holding

S = 22000.0


def _book() -> list[Holding]:
    return [
        Holding("NIFTY", "index", 2.0, 1.0, S, "INR", 1.0),
        Holding("NF", "future", 1.0, 25.0, S * 1.01, "INR", 1.0, underlying="NIFTY", underlying_price=S),
        Holding(
            "C",
            "option",
            4.0,
            25.0,
            300.0,
            "INR",
            1.0,
            underlying="NIFTY",
            underlying_price=S,
            option_type="C",
            strike=22000.0,
            expiry_years=0.1,
            implied_vol=0.15,
            rate=0.06,
        ),
        Holding(
            "P",
            "option",
            -3.0,
            25.0,
            200.0,
            "INR",
            1.0,
            underlying="NIFTY",
            underlying_price=S,
            option_type="P",
            strike=21000.0,
            expiry_years=0.2,
            implied_vol=0.18,
            rate=0.06,
        ),
        Holding("AAPL", "equity", 10.0, 1.0, 200.0, "USD", 83.0, fx_symbol="FX:USD/INR"),
        Holding("GSEC", "bond", 10.0, 1.0, 99.0, "INR", 1.0, coupon_rate=0.07, coupon_frequency=2, maturity_years=5.0),
    ]


def _book_value(holdings, spot_factor=1.0, vol_shift=0.0, t_shift=0.0, r_shift=0.0) -> float:
    total = 0.0
    for h in holdings:
        if h.asset_class == "option":
            t = h.expiry_years - t_shift
            r = h.rate + r_shift
            s = S * spot_factor
            v = black76.price(s * np.exp(r * t), h.strike, t, h.implied_vol + vol_shift, r, h.option_type == "C")
            total += float(v) * h.quantity * h.multiplier * h.fx_rate
        elif h.asset_class == "future":
            total += h.price * spot_factor * h.quantity * h.multiplier
        elif h.driver == "NIFTY":
            total += h.market_value * spot_factor
    return total


def test_greeks_match_finite_differences_of_the_book_value():
    hs = _book()
    rows = {r.underlying: r for r in portfolio_greeks(hs)}
    assert set(rows) == {"NIFTY", "AAPL"}  # bonds carry duration, not Greeks
    nifty = [h for h in hs if h.driver == "NIFTY"]
    e = 1e-4
    delta_fd = (_book_value(nifty, 1 + e) - _book_value(nifty, 1 - e)) / (2 * e * S)
    gamma_fd = (_book_value(nifty, 1 + e) - 2 * _book_value(nifty) + _book_value(nifty, 1 - e)) / (e * S) ** 2
    vega_fd = (_book_value(nifty, vol_shift=0.005) - _book_value(nifty, vol_shift=-0.005)) / 1.0  # per 0.01
    theta_fd = -(_book_value(nifty, t_shift=-0.5 / 365) - _book_value(nifty, t_shift=0.5 / 365))
    rho_fd = (_book_value(nifty, r_shift=0.005) - _book_value(nifty, r_shift=-0.005)) / 1.0  # per 1%
    r = rows["NIFTY"]
    assert_allclose(r.delta, delta_fd, rtol=1e-6)
    assert_allclose(r.gamma, gamma_fd, rtol=1e-3)
    assert_allclose(r.vega, vega_fd, rtol=1e-3)
    assert_allclose(r.theta, theta_fd, rtol=1e-3)
    assert_allclose(r.rho, rho_fd, rtol=1e-3)
    assert_allclose(r.delta_cash, r.delta * S)


def test_linear_delta_is_quantity_times_multiplier_times_fx():
    rows = {r.underlying: r for r in portfolio_greeks(_book())}
    assert_allclose(rows["AAPL"].delta, 10.0 * 83.0)
    assert_allclose(rows["AAPL"].delta_cash, 10.0 * 83.0 * 200.0)
    assert rows["AAPL"].gamma == rows["AAPL"].vega == 0.0


def test_gamma_pnl_is_half_gamma_times_squared_one_percent_move():
    hs = _book()
    gamma = {r.underlying: r for r in portfolio_greeks(hs)}["NIFTY"].gamma
    assert_allclose(gamma_pnl(hs), 0.5 * gamma * (0.01 * S) ** 2)


def test_ladder_is_full_revaluation_of_the_underlyings_book():
    hs = _book()
    spots, vols, grid = spot_vol_ladder(hs, underlying="NIFTY")
    assert grid.shape == (vols.size, spots.size) == (6, 9)
    zero_vol = int(np.flatnonzero(vols == 0)[0])
    zero_spot = int(np.flatnonzero(np.isclose(spots, 0))[0])
    assert abs(grid[zero_vol, zero_spot]) < 1e-6
    nifty = [h for h in hs if h.driver == "NIFTY"]
    for j, m in enumerate(spots):
        assert_allclose(grid[zero_vol, j], _book_value(nifty, 1 + m) - _book_value(nifty), rtol=1e-9, atol=1e-6)
    # Vol moves are relative: +0.5 multiplies every implied vol by 1.5.
    i = int(np.flatnonzero(vols == 0.5)[0])
    options = [h for h in nifty if h.asset_class == "option"]
    book = revalue.prepare_book(options)
    shocked = revalue.position_pnl(book, np.zeros((1, 1)), horizon_days=0, vol_multiplier=1.5).sum()
    assert_allclose(grid[i, zero_spot], shocked)


def test_ladder_without_an_underlying_moves_everything_together():
    hs = _book()[:1] + _book()[4:5]
    spots, _, grid = spot_vol_ladder(hs)
    expected = spots * (2.0 * S + 10.0 * 83.0 * 200.0)
    assert_allclose(grid[2], expected, rtol=1e-9)
