"""Bond yield, duration and convexity against full repricing."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from apps.risk.engine import bonds

bond_cases = st.tuples(
    st.floats(min_value=0.0, max_value=0.12),  # coupon
    st.sampled_from([1, 2, 4, 12]),  # frequency
    st.floats(min_value=0.3, max_value=30.0),  # maturity
    st.floats(min_value=0.005, max_value=0.15),  # yield
)


def test_par_bond_on_a_coupon_date_yields_its_coupon():
    assert_allclose(bonds.yield_to_maturity(100.0, 0.06, 2, 10.0), [0.06], atol=1e-12)


def test_zero_coupon_duration_is_maturity_over_one_plus_yield():
    price = 100.0 / 1.05**4
    r = bonds.risk_measures(price, 0.0, 0, 4.0)
    assert_allclose(r["ytm"], [0.05], atol=1e-12)
    assert_allclose(r["duration"], [4.0 / 1.05], rtol=1e-10)
    assert_allclose(r["convexity"], [4.0 * 5.0 / 1.05**2], rtol=1e-10)


@settings(max_examples=150, deadline=None)
@given(bond_cases)
def test_yield_round_trips_through_price(case):
    coupon, freq, maturity, y = case
    clean = bonds.price_from_yield(y, coupon, freq, maturity)
    assert_allclose(bonds.yield_to_maturity(clean, coupon, freq, maturity), [y], atol=1e-10)


@settings(max_examples=150, deadline=None)
@given(bond_cases)
def test_duration_and_convexity_match_finite_difference_repricing(case):
    coupon, freq, maturity, y = case
    clean = bonds.price_from_yield(y, coupon, freq, maturity)
    r = bonds.risk_measures(clean, coupon, freq, maturity)
    h = 1e-5
    up = bonds.price_from_yield(y + h, coupon, freq, maturity)
    down = bonds.price_from_yield(y - h, coupon, freq, maturity)
    assert_allclose(r["duration"], -(up - down) / (2 * h) / r["dirty"], rtol=1e-6)
    h2 = 1e-4  # a wider step for the second difference keeps rounding out of it
    up2 = bonds.price_from_yield(y + h2, coupon, freq, maturity)
    down2 = bonds.price_from_yield(y - h2, coupon, freq, maturity)
    assert_allclose(r["convexity"], (up2 - 2 * clean + down2) / h2**2 / r["dirty"], rtol=1e-4, atol=1e-5)


@settings(max_examples=100, deadline=None)
@given(bond_cases, st.floats(min_value=-0.01, max_value=0.01))
def test_duration_convexity_revaluation_is_close_to_full_repricing(case, dy):
    coupon, freq, maturity, y = case
    clean = bonds.price_from_yield(y, coupon, freq, maturity)
    r = bonds.risk_measures(clean, coupon, freq, maturity)
    approx = clean + bonds.price_change(r["dirty"], r["duration"], r["convexity"], dy)
    full = bonds.price_from_yield(y + dy, coupon, freq, maturity)
    # The error is third order in dy, at most T (T + 1/f) (T + 2/f) |dy|^3 / 6 of the dirty price.
    assert np.all(np.abs(approx - full) <= r["dirty"] * ((maturity + 2) ** 3 * abs(dy) ** 3 / 6 + 1e-9))


def test_vectorised_over_bonds_and_history():
    coupons = np.array([0.05, 0.07, 0.0])
    freqs = np.array([2, 1, 0])
    mats = np.array([5.25, 10.0, 3.0])
    ys = np.array([[0.04, 0.06, 0.03], [0.05, 0.07, 0.02]])
    prices = np.vstack([bonds.price_from_yield(row, coupons, freqs, mats) for row in ys])
    assert_allclose(bonds.yield_to_maturity(prices, coupons, freqs, mats), ys, atol=1e-10)


def test_yield_history_keeps_missing_prices_missing():
    y = bonds.yield_history(np.array([99.0, np.nan, 101.0]), 0.06, 2, 5.0)
    assert np.isnan(y[1]) and np.isfinite(y[[0, 2]]).all()
    assert y[0] > y[2]
