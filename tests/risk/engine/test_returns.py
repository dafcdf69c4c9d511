import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose, assert_array_equal

from apps.risk.engine.returns import (
    align_prices,
    ewma_covariance,
    ewma_volatility,
    horizon_returns,
    sample_covariance,
    to_returns,
    usable_history,
)
from apps.risk.engine.types import MarketData

DATES = np.datetime64("2024-01-01") + np.arange(400)


def market(prices: np.ndarray, symbols: tuple[str, ...] | None = None) -> MarketData:
    t, n = prices.shape
    return MarketData(dates=DATES[:t], symbols=symbols or tuple(f"S{j}" for j in range(n)), prices=prices)


def reference_fill(col: list[float], bound: int) -> tuple[list[float], list[tuple[int, int]]]:
    """Plain-Python bounded forward fill: returns the filled column and the (start, end) of unfilled gaps."""
    out = list(col)
    unfilled = []
    i, n = 0, len(col)
    seen_valid = False
    while i < n:
        if not math.isnan(col[i]):
            seen_valid = True
            i += 1
            continue
        j = i
        while j < n and math.isnan(col[j]):
            j += 1
        if seen_valid:
            if j - i <= bound:
                for t in range(i, j):
                    out[t] = col[i - 1]
            else:
                unfilled.append((i, j - 1))
        i = j
    return out, unfilled


@st.composite
def gappy_prices(draw):
    t = draw(st.integers(2, 60))
    n = draw(st.integers(1, 4))
    values = draw(arrays(np.float64, (t, n), elements=st.floats(1.0, 1000.0)))
    holes = draw(arrays(np.bool_, (t, n), elements=st.booleans()))
    values[holes] = np.nan
    return values


@settings(max_examples=100, deadline=None)
@given(prices=gappy_prices(), bound=st.integers(0, 6))
def test_align_prices_fills_gaps_up_to_the_bound_and_not_beyond(prices, bound):
    filled, warnings = align_prices(market(prices), max_fill_days=bound)
    expected_warnings = 0
    for j in range(prices.shape[1]):
        ref, unfilled = reference_fill(prices[:, j].tolist(), bound)
        assert_array_equal(filled[:, j], np.array(ref))
        expected_warnings += len(unfilled)
        for start, end in unfilled:
            assert any(w.startswith(f"S{j}: {end - start + 1} days without a close ({DATES[start]}") for w in warnings)
    assert len(warnings) == expected_warnings


def test_align_prices_names_symbol_and_dates_of_a_long_gap():
    prices = np.array([[1.0, 5.0], [np.nan, 5.1], [np.nan, np.nan], [1.2, np.nan], [1.3, np.nan], [1.4, np.nan]])
    filled, warnings = align_prices(market(prices, ("INFY", "TCS")), max_fill_days=2)
    assert_array_equal(filled[:, 0], [1.0, 1.0, 1.0, 1.2, 1.3, 1.4])
    assert np.isnan(filled[2:, 1]).all()
    assert warnings == [
        "TCS: 4 days without a close (2024-01-03 to 2024-01-06, at the end of the history), "
        "more than the 2-day fill limit; left missing"
    ]


def test_align_prices_leaves_the_start_of_a_short_history_alone():
    prices = np.array([[np.nan], [np.nan], [2.0], [np.nan], [3.0]])
    filled, warnings = align_prices(market(prices), max_fill_days=5)
    assert_array_equal(filled[:, 0], [np.nan, np.nan, 2.0, 2.0, 3.0])
    assert warnings == []


def test_align_prices_does_not_modify_its_input():
    prices = np.array([[1.0], [np.nan], [2.0]])
    align_prices(market(prices), max_fill_days=1)
    assert np.isnan(prices[1, 0])


def test_to_returns_log_and_simple_with_nan_propagation():
    p = np.array([[100.0, 10.0], [110.0, np.nan], [99.0, 12.0]])
    assert_allclose(to_returns(p, kind="simple")[:, 0], [0.1, -0.1])
    assert_allclose(to_returns(p)[:, 0], [math.log(1.1), math.log(0.9)])
    assert np.isnan(to_returns(p)[:, 1]).all()
    assert to_returns(p).shape == (2, 2)
    with pytest.raises(ValueError):
        to_returns(p, kind="pct")


def test_usable_history_reports_too_short_series_by_name():
    rng = np.random.default_rng(0)
    r = rng.normal(size=(100, 3))
    r[:58, 1] = np.nan  # 42 days left
    r[::2, 2] = np.nan  # 50 days, spread out
    mask, warnings = usable_history(r, ("INFY", "TCS", "HDFC"), min_days=60, lookback=100)
    assert_array_equal(mask, [True, False, False])
    assert warnings == [
        "TCS: 42 days of history (needs 60); left out of the scenarios",
        "HDFC: 50 days of history (needs 60); left out of the scenarios",
    ]


def test_usable_history_counts_only_the_lookback():
    r = np.ones((100, 1))
    r[-30:] = np.nan
    mask, warnings = usable_history(r, ("X",), min_days=60, lookback=80)
    assert not mask[0]
    assert warnings == ["X: 50 days of history (needs 60); left out of the scenarios"]


@settings(max_examples=60, deadline=None)
@given(
    r=arrays(np.float64, st.tuples(st.integers(1, 30), st.integers(1, 3)), elements=st.floats(-0.2, 0.2)),
    horizon=st.integers(1, 8),
    nan_at=st.integers(0, 40),
)
def test_horizon_returns_are_overlapping_window_sums(r, horizon, nan_at):
    if nan_at < r.shape[0]:
        r[nan_at, 0] = np.nan
    out = horizon_returns(r, horizon=horizon)
    assert out.shape == (max(r.shape[0] - horizon + 1, 0), r.shape[1])
    for i in range(out.shape[0]):
        for j in range(r.shape[1]):
            window = r[i : i + horizon, j]
            if np.isnan(window).any():
                assert np.isnan(out[i, j])
            else:
                assert out[i, j] == pytest.approx(sum(window.tolist()), abs=1e-12)


def test_horizon_returns_rejects_a_zero_horizon():
    with pytest.raises(ValueError):
        horizon_returns(np.zeros((5, 1)), horizon=0)


def slow_ewma(r: np.ndarray, lam: float) -> np.ndarray:
    """Loop reference: RiskMetrics recursion over complete rows, started from the plain second moment."""
    rows = [row for row in r if np.isfinite(row).all()]
    n = len(rows)
    s = sum(np.outer(x, x) for x in rows) / n
    for x in rows:
        s = lam * s + (1 - lam) * np.outer(x, x)
    return s


@settings(max_examples=60, deadline=None)
@given(
    r=arrays(np.float64, st.tuples(st.integers(1, 40), st.integers(1, 4)), elements=st.floats(-0.1, 0.1)),
    lam=st.floats(0.5, 0.995),
    holes=st.lists(st.tuples(st.integers(0, 39), st.integers(0, 3)), max_size=5),
)
def test_ewma_covariance_matches_the_slow_recursion(r, lam, holes):
    for i, j in holes:
        if i < r.shape[0] and j < r.shape[1] and np.isfinite(r).all(axis=1).sum() > 1:
            r[i, j] = np.nan
    if not np.isfinite(r).all(axis=1).any():
        assert np.isnan(ewma_covariance(r, lam=lam)).all()
        return
    assert_allclose(ewma_covariance(r, lam=lam), slow_ewma(r, lam), rtol=1e-9, atol=1e-15)


def test_ewma_covariance_weights_recent_days_more():
    r = np.concatenate([np.full((200, 1), 0.01), np.full((10, 1), 0.05)]) * np.where(np.arange(210) % 2, 1, -1)[:, None]
    assert ewma_volatility(r[:, 0], lam=0.94) > math.sqrt(sample_covariance(r)[0, 0])
    with pytest.raises(ValueError):
        ewma_covariance(r, lam=1.0)


def test_ewma_volatility_is_the_root_of_the_ewma_variance():
    rng = np.random.default_rng(3)
    r = rng.normal(0, 0.01, 300)
    assert ewma_volatility(r, lam=0.97) == pytest.approx(math.sqrt(ewma_covariance(r[:, None], lam=0.97)[0, 0]))


def test_sample_covariance_uses_complete_rows():
    rng = np.random.default_rng(4)
    r = rng.normal(size=(50, 3))
    r[5, 1] = np.nan
    r[9, 2] = np.nan
    keep = np.isfinite(r).all(axis=1)
    assert_allclose(sample_covariance(r), np.cov(r[keep].T, ddof=1))
    assert np.isnan(sample_covariance(r[:1])).all()
