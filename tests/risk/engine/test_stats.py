import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose

from apps.risk.engine.returns import ewma_volatility
from apps.risk.engine.stats import drawdown_series, portfolio_stats


def test_drawdown_series_of_a_known_path():
    assert_allclose(drawdown_series(np.array([0.1, -0.5, 0.2, 1.0])), [0.0, 0.5, 0.4, 0.0])
    assert_allclose(drawdown_series(np.array([-0.1, 0.05])), [0.1, 1 - 0.9 * 1.05])


@settings(max_examples=100, deadline=None)
@given(r=arrays(np.float64, st.integers(1, 200), elements=st.floats(-0.5, 0.5)))
def test_drawdowns_match_a_pandas_reference(r):
    wealth = pd.Series(np.concatenate([[1.0], np.cumprod(1 + r)]))
    reference = (1 - wealth / wealth.cummax()).to_numpy()[1:]
    assert_allclose(drawdown_series(r), reference, atol=1e-12)
    s = portfolio_stats(r, risk_free_rate=0.0, ewma_lambda=0.94)
    assert s.max_drawdown == pytest.approx(reference.max(), abs=1e-12)
    assert s.current_drawdown == pytest.approx(reference[-1], abs=1e-12)
    assert 0 <= s.current_drawdown <= s.max_drawdown <= 1


def test_portfolio_stats_against_explicit_formulas():
    rng = np.random.default_rng(12)
    r = rng.normal(0.0004, 0.01, 750)
    b = 0.8 * r + rng.normal(0, 0.005, 750)
    rf = 0.05
    s = portfolio_stats(r, risk_free_rate=rf, ewma_lambda=0.94, benchmark_returns=b)
    annual = math.prod((1 + x) for x in r.tolist()) ** (252 / 750) - 1
    vol = float(np.std(r, ddof=1)) * math.sqrt(252)
    rf_d = (1 + rf) ** (1 / 252) - 1
    downside = math.sqrt(sum(min(x - rf_d, 0.0) ** 2 for x in r.tolist()) / 750) * math.sqrt(252)
    assert s.annual_return == pytest.approx(annual, rel=1e-10)
    assert s.annual_volatility == pytest.approx(vol, rel=1e-12)
    assert s.sharpe == pytest.approx((annual - rf) / vol, rel=1e-10)
    assert s.sortino == pytest.approx((annual - rf) / downside, rel=1e-10)
    assert s.ewma_volatility == pytest.approx(ewma_volatility(r, lam=0.94) * math.sqrt(252))
    slope = np.polyfit(b, r, 1)[0]
    assert s.beta == pytest.approx(slope, rel=1e-9)
    assert s.correlation == pytest.approx(np.corrcoef(r, b)[0, 1], rel=1e-12)


def test_beta_and_correlation_are_none_without_a_usable_benchmark():
    r = np.random.default_rng(1).normal(0, 0.01, 100)
    assert portfolio_stats(r, risk_free_rate=0.0, ewma_lambda=0.94).beta is None
    short = portfolio_stats(r[:10], risk_free_rate=0.0, ewma_lambda=0.94, benchmark_returns=r[:10])
    assert short.beta is None and short.correlation is None
    flat = portfolio_stats(r, risk_free_rate=0.0, ewma_lambda=0.94, benchmark_returns=np.zeros(100))
    assert flat.beta is None
    with pytest.raises(ValueError):
        portfolio_stats(r, risk_free_rate=0.0, ewma_lambda=0.94, benchmark_returns=r[:50])


def test_nan_days_are_skipped_and_beta_uses_paired_days():
    rng = np.random.default_rng(2)
    b = rng.normal(0, 0.01, 200)
    r = 1.5 * b
    r[7] = np.nan
    s = portfolio_stats(r, risk_free_rate=0.0, ewma_lambda=0.94, benchmark_returns=b)
    assert s.beta == pytest.approx(1.5)
    assert s.correlation == pytest.approx(1.0)
    assert math.isfinite(s.annual_volatility)


def test_constant_returns_have_zero_volatility_and_ratios():
    s = portfolio_stats(np.full(252, 0.0002), risk_free_rate=0.03, ewma_lambda=0.94)
    assert s.annual_return == pytest.approx(1.0002**252 - 1)
    assert s.annual_volatility == pytest.approx(0.0, abs=1e-15)
    assert s.sharpe == 0.0
    assert s.max_drawdown == 0.0
    empty = portfolio_stats(np.array([]), risk_free_rate=0.03, ewma_lambda=0.94)
    assert empty.annual_return == 0.0 and empty.beta is None
