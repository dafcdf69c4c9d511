"""Black-76 prices and Greeks: literature values, parity, finite differences, edge cases."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy import integrate
from scipy.stats import lognorm

from apps.risk.engine import black76

positive = st.floats(min_value=5.0, max_value=500.0)
contracts = st.tuples(
    positive,  # forward
    st.floats(min_value=0.5, max_value=2.0),  # strike / forward
    st.floats(min_value=0.05, max_value=3.0),  # expiry
    st.floats(min_value=0.05, max_value=1.0),  # vol
    st.floats(min_value=-0.02, max_value=0.15),  # rate
    st.booleans(),
)


def test_hull_black_model_put():
    """Hull, Options, Futures, and Other Derivatives, Black's model example: F = K = 20, r = 9%, sigma = 25%,
    T = 4 months; the European put on the futures is worth 1.12."""
    assert round(float(black76.price(20.0, 20.0, 4 / 12, 0.25, 0.09, False)), 2) == 1.12


def test_haug_black76_example():
    """Haug, The Complete Guide to Option Pricing Formulas (2nd ed.), Black-76 example: F = K = 19, T = 0.75,
    r = 10%, sigma = 28%; call and put are both worth 1.7011."""
    call = black76.price(19.0, 19.0, 0.75, 0.28, 0.10, True)
    put = black76.price(19.0, 19.0, 0.75, 0.28, 0.10, False)
    assert_allclose([call, put], [1.7011, 1.7011], atol=5e-5)


def _integrated_price(f, k, t, sigma, r, is_call):
    """Discounted expectation of the payoff under a lognormal forward with mean F, by quadrature."""
    dist = lognorm(s=sigma * np.sqrt(t), scale=f * np.exp(-0.5 * sigma * sigma * t))
    if is_call:
        value, _ = integrate.quad(lambda x: (x - k) * dist.pdf(x), k, np.inf, limit=200)
    else:
        value, _ = integrate.quad(lambda x: (k - x) * dist.pdf(x), 0.0, k, limit=200)
    return np.exp(-r * t) * value


def test_prices_match_integrated_lognormal_payoff():
    cases = [
        (100.0, 90.0, 0.5, 0.3, 0.05, True),
        (100.0, 110.0, 2.0, 0.2, 0.01, False),
        (50.0, 50.0, 1.0, 0.6, 0.0, True),
    ]
    for case in cases:
        assert_allclose(black76.price(*case), _integrated_price(*case), rtol=1e-7)


@settings(max_examples=200, deadline=None)
@given(contracts)
def test_put_call_parity(c):
    f, moneyness, t, sigma, r, _ = c
    k = f * moneyness
    call = black76.price(f, k, t, sigma, r, True)
    put = black76.price(f, k, t, sigma, r, False)
    assert_allclose(call - put, np.exp(-r * t) * (f - k), atol=1e-9 * f)


@settings(max_examples=200, deadline=None)
@given(contracts)
def test_greeks_match_central_differences(c):
    f, moneyness, t, sigma, r, is_call = c
    k = f * moneyness
    g = black76.greeks(f, k, t, sigma, r, is_call)

    def p(**kw):
        args = {"forward": f, "strike": k, "expiry": t, "sigma": sigma, "rate": r, "is_call": is_call} | kw
        return float(black76.price(**args))

    hf, hs, ht, hr = 1e-3 * f * sigma * np.sqrt(t), 1e-5, 1e-5 * t, 1e-6  # step scaled to the distribution's width
    assert_allclose(g["price"], p(), rtol=1e-14)
    assert_allclose(g["delta"], (p(forward=f + hf) - p(forward=f - hf)) / (2 * hf), atol=1e-6)
    gamma_fd = (p(forward=f + hf) - 2 * p() + p(forward=f - hf)) / hf**2
    assert_allclose(g["gamma"], gamma_fd, rtol=1e-3, atol=1e-5 / f)
    assert_allclose(g["vega"], (p(sigma=sigma + hs) - p(sigma=sigma - hs)) / (2 * hs), rtol=1e-5, atol=1e-7 * f)
    assert_allclose(g["theta"], -(p(expiry=t + ht) - p(expiry=t - ht)) / (2 * ht), rtol=1e-4, atol=1e-5 * f)
    assert_allclose(g["rho"], (p(rate=r + hr) - p(rate=r - hr)) / (2 * hr), rtol=1e-5, atol=1e-7 * f)


@settings(max_examples=100, deadline=None)
@given(contracts)
def test_spot_greeks_match_central_differences(c):
    s, moneyness, t, sigma, r, is_call = c
    k = s * moneyness
    g = black76.spot_greeks(s, k, t, sigma, r, is_call)

    def p(s_=s, t_=t, r_=r):
        return float(black76.price(s_ * np.exp(r_ * t_), k, t_, sigma, r_, is_call))

    hs, ht, hr = 1e-3 * s * sigma * np.sqrt(t), 1e-5 * t, 1e-6
    assert_allclose(g["delta"], (p(s_=s + hs) - p(s_=s - hs)) / (2 * hs), atol=1e-6)
    assert_allclose(g["gamma"], (p(s_=s + hs) - 2 * p() + p(s_=s - hs)) / hs**2, rtol=1e-3, atol=1e-5 / s)
    assert_allclose(g["theta"], -(p(t_=t + ht) - p(t_=t - ht)) / (2 * ht), rtol=1e-4, atol=1e-5 * s)
    assert_allclose(g["rho"], (p(r_=r + hr) - p(r_=r - hr)) / (2 * hr), rtol=1e-5, atol=1e-6 * s)


def test_expired_options_are_worth_intrinsic_with_zero_greeks():
    g = black76.greeks([110.0, 90.0, 110.0], 100.0, [0.0, -0.1, 0.0], 0.2, 0.05, [True, False, False])
    assert_allclose(g["price"], [10.0, 10.0, 0.0])
    for name in ("delta", "gamma", "vega", "theta", "rho"):
        assert_allclose(g[name], 0.0)


def test_zero_vol_is_discounted_intrinsic_without_nan():
    g = black76.greeks([110.0, 90.0], 100.0, 1.0, [0.0, -0.1], 0.05, [True, True])
    assert_allclose(g["price"], [10.0 * np.exp(-0.05), 0.0])
    assert_allclose(g["delta"], [np.exp(-0.05), 0.0])
    assert_allclose(g["gamma"], 0.0)
    assert_allclose(g["vega"], 0.0)
    assert all(np.isfinite(v).all() for v in g.values())


def test_unit_helpers():
    assert black76.per_vol_point(np.array(25.0)) == 0.25
    assert black76.per_calendar_day(np.array(365.0)) == 1.0
    assert black76.per_rate_percent(np.array(100.0)) == 1.0


def test_vectorised_over_arrays():
    rng = np.random.default_rng(1)
    n = 1000
    f = rng.uniform(50, 150, n)
    prices = black76.price(f, 100.0, rng.uniform(0.1, 2, n), rng.uniform(0.1, 0.5, n), 0.03, rng.random(n) < 0.5)
    assert prices.shape == (n,) and np.all(prices >= 0)
