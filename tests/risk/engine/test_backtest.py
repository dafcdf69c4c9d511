import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose, assert_array_equal
from scipy import stats

from apps.risk.engine.backtest import (
    basel_zone,
    christoffersen_independence,
    conditional_coverage,
    kupiec_pof,
    rolling_var_backtest,
)
from apps.risk.engine.var import historical_var_es, parametric_var_es


def reference_kupiec(x: int, n: int, confidence: float) -> tuple[float, float]:
    """LR = 2 [log L(x/n) - log L(p)] with binomial likelihoods (the binomial coefficient cancels)."""
    p = 1 - confidence
    stat = 2 * (stats.binom.logpmf(x, n, x / n) - stats.binom.logpmf(x, n, p))
    return stat, stats.chi2.sf(stat, df=1)


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 1000), frac=st.floats(0, 1), confidence=st.floats(0.8, 0.999))
def test_kupiec_matches_a_binomial_likelihood_ratio(n, frac, confidence):
    x = round(frac * n)
    stat, p = kupiec_pof(exceptions=x, observations=n, confidence=confidence)
    ref_stat, ref_p = reference_kupiec(x, n, confidence)
    assert stat == pytest.approx(ref_stat, rel=1e-9, abs=1e-9)
    assert p == pytest.approx(ref_p, rel=1e-7, abs=1e-12)


def test_kupiec_handles_zero_and_all_exceptions():
    stat, p = kupiec_pof(exceptions=0, observations=250, confidence=0.99)
    assert stat == pytest.approx(-2 * 250 * math.log(0.99))
    assert 0 < p < 1
    stat, p = kupiec_pof(exceptions=250, observations=250, confidence=0.99)
    assert stat == pytest.approx(-2 * 250 * math.log(0.01))
    assert p < 1e-12
    assert kupiec_pof(exceptions=5, observations=500, confidence=0.99) == pytest.approx((0.0, 1.0), abs=1e-6)
    with pytest.raises(ValueError):
        kupiec_pof(exceptions=11, observations=10, confidence=0.99)


def reference_christoffersen(hits: list[bool]) -> float:
    counts = {(a, b): 0 for a in (0, 1) for b in (0, 1)}
    for prev, cur in zip(hits[:-1], hits[1:], strict=True):
        counts[(int(prev), int(cur))] += 1
    n00, n01, n10, n11 = counts[(0, 0)], counts[(0, 1)], counts[(1, 0)], counts[(1, 1)]

    def ll(n_no: int, n_yes: int) -> float:
        total = n_no + n_yes
        if total == 0:
            return 0.0
        p = n_yes / total
        return (n_no * math.log(1 - p) if n_no else 0.0) + (n_yes * math.log(p) if n_yes else 0.0)

    restricted = ll(n00 + n10, n01 + n11)
    unrestricted = ll(n00, n01) + ll(n10, n11)
    return max(-2 * (restricted - unrestricted), 0.0)


@settings(max_examples=100, deadline=None)
@given(hits=arrays(np.bool_, st.integers(2, 300), elements=st.booleans()))
def test_christoffersen_matches_a_transition_count_loop(hits):
    stat, p = christoffersen_independence(hits)
    ref = reference_christoffersen(hits.tolist())
    assert stat == pytest.approx(ref, rel=1e-9, abs=1e-9)
    assert p == pytest.approx(stats.chi2.sf(ref, 1), rel=1e-7, abs=1e-12)


def test_clustered_exceptions_fail_independence():
    hits = np.zeros(500, dtype=bool)
    hits[100:105] = True
    stat, p = christoffersen_independence(hits)
    assert p < 0.01
    spread = np.zeros(500, dtype=bool)
    spread[::100] = True
    assert christoffersen_independence(spread)[1] > 0.05
    assert christoffersen_independence(np.array([True])) == (0.0, 1.0)
    assert christoffersen_independence(np.zeros(100, dtype=bool)) == (0.0, 1.0)


@settings(max_examples=100, deadline=None)
@given(hits=arrays(np.bool_, st.integers(2, 300), elements=st.booleans()), confidence=st.floats(0.9, 0.999))
def test_conditional_coverage_is_pof_plus_independence_on_chi2_2(hits, confidence):
    stat, p = conditional_coverage(hits, confidence=confidence)
    pof = reference_kupiec(int(hits.sum()), hits.size, confidence)[0]
    ind = reference_christoffersen(hits.tolist())
    assert stat == pytest.approx(pof + ind, rel=1e-9, abs=1e-9)
    assert p == pytest.approx(stats.chi2.sf(pof + ind, 2), rel=1e-7, abs=1e-12)


@pytest.mark.parametrize(
    ("exceptions", "zone"),
    [(0, "green"), (4, "green"), (5, "yellow"), (9, "yellow"), (10, "red"), (11, "red"), (250, "red")],
)
def test_basel_zones_for_250_days_at_99(exceptions, zone):
    assert basel_zone(exceptions=exceptions) == zone
    assert basel_zone(exceptions=exceptions, observations=250, confidence=0.99) == zone


def test_basel_zone_follows_the_cumulative_binomial_rule_for_other_samples():
    for n, c in [(500, 0.99), (1000, 0.975), (250, 0.95)]:
        for x in range(0, n // 5):
            cdf = stats.binom.cdf(x, n, 1 - c)
            expected = "green" if cdf < 0.95 else "yellow" if cdf < 0.9999 else "red"
            assert basel_zone(exceptions=x, observations=n, confidence=c) == expected


@pytest.mark.parametrize("method", ["historical", "parametric", "cornish_fisher"])
def test_rolling_var_uses_only_the_window_before_each_day(method):
    rng = np.random.default_rng(21)
    pnl = rng.standard_t(4, 400) * 1000
    result = rolling_var_backtest(pnl, window=250, confidence=0.99, method=method)
    assert result.observations == 150 == result.var.size == result.hits.size
    assert_array_equal(result.pnl, pnl[250:])
    shocked = pnl.copy()
    shocked[300] = -1e9  # today's loss must not feed today's VaR
    again = rolling_var_backtest(shocked, window=250, confidence=0.99, method=method)
    assert again.var[50] == result.var[50]
    assert again.hits[50]
    assert again.var[51] > result.var[51]  # ... but does feed tomorrow's


def test_rolling_historical_and_parametric_match_a_loop():
    rng = np.random.default_rng(8)
    pnl = rng.normal(10, 1000, 320)
    hist = rolling_var_backtest(pnl, window=100, confidence=0.95)
    para = rolling_var_backtest(pnl, window=100, confidence=0.95, method="parametric")
    for i, t in enumerate(range(100, 320)):
        past = pnl[t - 100 : t]
        assert (hist.var[i], hist.es[i]) == pytest.approx(historical_var_es(past, confidence=0.95))
        expected = parametric_var_es(mean=past.mean(), std=past.std(ddof=1), confidence=0.95)
        assert (para.var[i], para.es[i]) == pytest.approx(expected)
    hits = pnl[100:] < -hist.var
    assert_array_equal(hist.hits, hits)
    assert hist.exceptions == hits.sum()
    assert hist.exception_rate == pytest.approx(hits.mean())
    assert hist.kupiec == pytest.approx(kupiec_pof(exceptions=int(hits.sum()), observations=220, confidence=0.95))
    assert hist.christoffersen == pytest.approx(christoffersen_independence(hits))
    assert hist.conditional_coverage == pytest.approx(conditional_coverage(hits, confidence=0.95))
    assert hist.basel_zone == basel_zone(exceptions=int(hits.sum()), observations=220, confidence=0.95)


def test_a_well_specified_normal_var_passes_its_backtest():
    pnl = np.random.default_rng(13).normal(0, 1, 1250)
    result = rolling_var_backtest(pnl, window=500, confidence=0.99, method="parametric")
    assert result.kupiec[1] > 0.01
    assert result.basel_zone in ("green", "yellow")
    assert_allclose(result.var, result.var.mean(), rtol=0.15)


def test_rolling_backtest_rejects_bad_arguments():
    with pytest.raises(ValueError):
        rolling_var_backtest(np.zeros(10), window=10, confidence=0.99)
    with pytest.raises(ValueError):
        rolling_var_backtest(np.zeros(100), window=10, confidence=0.99, method="garch")


def test_coverage_tests_reject_an_impossible_confidence():
    with pytest.raises(ValueError):
        kupiec_pof(exceptions=1, observations=10, confidence=1.0)
    with pytest.raises(ValueError):
        basel_zone(exceptions=1, confidence=0.0)
