import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose, assert_array_equal
from scipy import integrate, stats

from apps.risk.engine.var import (
    cornish_fisher_bounds,
    cornish_fisher_quantile,
    cornish_fisher_var_es,
    historical_var_es,
    parametric_var_es,
    pnl_moments,
    scale_horizon,
    tail_size,
)

confidences = st.floats(0.5, 0.999)
pnls = arrays(np.float64, st.integers(1, 300), elements=st.floats(-1e6, 1e6))
batches = arrays(np.float64, st.tuples(st.integers(1, 120), st.integers(1, 6)), elements=st.floats(-1e4, 1e4))
skews = st.floats(-5.0, 5.0)
kurts = st.floats(-5.0, 50.0)


def reference_historical(pnl: list[float], confidence: float) -> tuple[float, float]:
    """Sorted-list reference with an exact tail size k = ceil(S (1 - c)) in rational arithmetic."""
    ordered = sorted(pnl)
    k = max(1, math.ceil(len(ordered) * (1 - Fraction(str(confidence)))))
    return -ordered[k - 1], -sum(ordered[:k]) / k


def test_historical_convention_is_the_kth_worst_loss():
    """With 100 scenarios at 95% the tail holds 5: VaR is the 5th worst loss, ES the mean of the 5 worst."""
    pnl = -np.arange(1.0, 101.0)
    var, es = historical_var_es(pnl, confidence=0.95)
    assert var == 96.0
    assert es == 98.0
    assert tail_size(500, 0.99) == 5
    assert tail_size(250, 0.99) == 3
    assert tail_size(10, 0.999) == 1


@settings(max_examples=100, deadline=None)
@given(pnl=pnls, confidence=st.sampled_from([0.9, 0.95, 0.975, 0.99, 0.995, 0.999]))
def test_historical_matches_a_sorted_list_reference(pnl, confidence):
    var, es = historical_var_es(pnl, confidence=confidence)
    ref_var, ref_es = reference_historical(pnl.tolist(), confidence)
    assert var == ref_var
    assert es == pytest.approx(ref_es, rel=1e-12, abs=1e-9)
    tail = pnl.size * (1 - confidence)
    if abs(tail - round(tail)) > 1e-6:  # numpy rounds S (1 - c) = 3.0000000000000027 up; the engine does not
        assert var == -np.quantile(pnl, 1 - confidence, method="inverted_cdf")


@settings(max_examples=100, deadline=None)
@given(pnl=pnls, confidence=confidences)
def test_historical_es_is_at_least_var(pnl, confidence):
    var, es = historical_var_es(pnl, confidence=confidence)
    assert es >= var


@settings(max_examples=100, deadline=None)
@given(pnl=pnls, c1=confidences, c2=confidences)
def test_historical_var_and_es_do_not_fall_as_confidence_rises(pnl, c1, c2):
    lo, hi = sorted((c1, c2))
    var_lo, es_lo = historical_var_es(pnl, confidence=lo)
    var_hi, es_hi = historical_var_es(pnl, confidence=hi)
    assert var_lo <= var_hi
    assert es_lo <= es_hi + 1e-9 * (1 + abs(es_hi))


@settings(max_examples=100, deadline=None)
@given(pnl=pnls, confidence=confidences, k=st.floats(1e-3, 1e3))
def test_historical_scales_with_the_pnl(pnl, confidence, k):
    var, es = historical_var_es(pnl, confidence=confidence)
    var_k, es_k = historical_var_es(k * pnl, confidence=confidence)
    assert var_k == pytest.approx(k * var, rel=1e-12, abs=1e-300)
    assert es_k == pytest.approx(k * es, rel=1e-9, abs=1e-9 * k * np.abs(pnl).max())


@settings(max_examples=100, deadline=None)
@given(pnl=pnls, confidence=confidences, shift=st.floats(-1e6, 1e6))
def test_historical_shifts_with_a_constant(pnl, confidence, shift):
    var, es = historical_var_es(pnl, confidence=confidence)
    var_s, es_s = historical_var_es(pnl + shift, confidence=confidence)
    tol = 1e-9 * (1 + abs(shift) + np.abs(pnl).max())
    assert var_s == pytest.approx(var - shift, abs=tol)
    assert es_s == pytest.approx(es - shift, abs=tol)


@settings(max_examples=100, deadline=None)
@given(pnl=batches, confidence=confidences)
def test_historical_batch_equals_column_by_column(pnl, confidence):
    var, es = historical_var_es(pnl, confidence=confidence)
    assert var.shape == es.shape == (pnl.shape[1],)
    for j in range(pnl.shape[1]):
        v, e = historical_var_es(pnl[:, j], confidence=confidence)
        assert var[j] == v
        assert es[j] == pytest.approx(e, rel=1e-12, abs=1e-12)


def test_historical_rejects_empty_and_bad_confidence():
    with pytest.raises(ValueError):
        historical_var_es(np.array([]), confidence=0.99)
    with pytest.raises(ValueError):
        historical_var_es(np.ones(10), confidence=1.0)
    with pytest.raises(ValueError, match="finite"):
        historical_var_es(np.array([1.0, np.nan, -2.0]), confidence=0.9)


@settings(max_examples=100, deadline=None)
@given(mean=st.floats(-1e3, 1e3), std=st.floats(0, 1e3), confidence=st.floats(0.5, 0.9999))
def test_parametric_equals_the_closed_form(mean, std, confidence):
    z = stats.norm.ppf(confidence)
    var, es = parametric_var_es(mean=mean, std=std, confidence=confidence)
    assert var == pytest.approx(-mean + z * std, rel=1e-12, abs=1e-9)
    assert es == pytest.approx(-mean + std * stats.norm.pdf(z) / (1 - confidence), rel=1e-12, abs=1e-9)
    assert es >= var - 1e-9


def test_parametric_is_vectorised_over_portfolios():
    mean = np.array([0.0, 1.0, -2.0])
    std = np.array([1.0, 2.0, 0.5])
    var, es = parametric_var_es(mean=mean, std=std, confidence=0.99)
    assert_allclose(var, -mean + 2.3263478740408408 * std)
    assert_allclose(es, -mean + 2.6652142203458076 * std)


@settings(max_examples=100, deadline=None)
@given(mean=st.floats(-10, 10), std=st.floats(0, 10), c1=confidences, c2=confidences)
def test_parametric_var_does_not_fall_as_confidence_rises(mean, std, c1, c2):
    lo, hi = sorted((c1, c2))
    assert parametric_var_es(mean=mean, std=std, confidence=lo)[0] <= parametric_var_es(
        mean=mean, std=std, confidence=hi
    )[0] + 1e-12 * (1 + abs(mean))


@settings(max_examples=100, deadline=None)
@given(mean=st.floats(-10, 10), std=st.floats(0, 10), confidence=st.floats(0.5, 0.9999))
def test_cornish_fisher_without_skew_or_kurtosis_is_parametric(mean, std, confidence):
    cf = cornish_fisher_var_es(mean=mean, std=std, skew=0.0, excess_kurtosis=0.0, confidence=confidence)
    assert_allclose(cf, parametric_var_es(mean=mean, std=std, confidence=confidence), rtol=1e-12, atol=1e-12)


@settings(max_examples=100, deadline=None)
@given(skew=skews, kurt=kurts, confidence=st.floats(0.5, 0.9999), std=st.floats(0, 100), mean=st.floats(-10, 10))
def test_cornish_fisher_es_is_at_least_var(skew, kurt, confidence, std, mean):
    var, es = cornish_fisher_var_es(mean=mean, std=std, skew=skew, excess_kurtosis=kurt, confidence=confidence)
    assert es >= var


@settings(max_examples=100, deadline=None)
@given(skew=skews, kurt=kurts, c1=st.floats(0.5, 0.9999), c2=st.floats(0.5, 0.9999))
def test_cornish_fisher_var_does_not_fall_as_confidence_rises(skew, kurt, c1, c2):
    """Also outside the expansion's domain of validity: the moments are projected onto it first."""
    lo, hi = sorted((c1, c2))
    var_lo, es_lo = cornish_fisher_var_es(mean=0, std=1, skew=skew, excess_kurtosis=kurt, confidence=lo)
    var_hi, es_hi = cornish_fisher_var_es(mean=0, std=1, skew=skew, excess_kurtosis=kurt, confidence=hi)
    assert var_lo <= var_hi + 1e-12
    assert es_lo <= es_hi + 1e-9


@settings(max_examples=100, deadline=None)
@given(skew=skews)
def test_cornish_fisher_bounds_give_a_monotone_expansion(skew):
    s, k_lo, k_hi = cornish_fisher_bounds(skew)
    z = np.linspace(-12, 12, 4001)
    for k in (k_lo, (k_lo + k_hi) / 2, k_hi):
        w = cornish_fisher_quantile(z, skew=s, excess_kurtosis=k)
        assert np.all(np.diff(w) >= -1e-9)


def test_cornish_fisher_bounds_at_zero_skew_are_zero_to_eight():
    s, k_lo, k_hi = cornish_fisher_bounds(0.0)
    assert (float(s), float(k_lo), float(k_hi)) == (0.0, 0.0, 8.0)


@pytest.mark.parametrize(("skew", "kurt", "confidence"), [(-0.5, 3.0, 0.99), (0.3, 1.0, 0.95), (-1.0, 6.0, 0.975)])
def test_cornish_fisher_es_integrates_the_quantile_function_over_the_tail(skew, kurt, confidence):
    """ES equals (1/alpha) x the integral of the CF quantile over u in (0, alpha), done numerically here."""
    alpha = 1 - confidence
    s, k_lo, k_hi = cornish_fisher_bounds(skew)
    assert k_lo <= kurt <= k_hi  # inside the domain, so no projection happens

    def quantile(u: float) -> float:
        z = stats.norm.ppf(u)
        return z + skew * (z**2 - 1) / 6 + kurt * (z**3 - 3 * z) / 24 - skew**2 * (2 * z**3 - 5 * z) / 36

    integral, _ = integrate.quad(quantile, 0, alpha, limit=200, epsabs=1e-12)
    mean, std = 0.001, 0.02
    var, es = cornish_fisher_var_es(mean=mean, std=std, skew=skew, excess_kurtosis=kurt, confidence=confidence)
    assert var == pytest.approx(-(mean + std * quantile(alpha)), rel=1e-12)
    assert es == pytest.approx(-(mean + std * integral / alpha), rel=1e-7)


def test_cornish_fisher_fat_left_tail_raises_var_above_normal():
    normal = parametric_var_es(mean=0, std=1, confidence=0.99)
    cf = cornish_fisher_var_es(mean=0, std=1, skew=-0.8, excess_kurtosis=4.0, confidence=0.99)
    assert cf[0] > normal[0]
    assert cf[1] > normal[1]


def test_cornish_fisher_is_vectorised():
    skew = np.array([0.0, -0.5, 0.5])
    kurt = np.array([0.0, 3.0, 3.0])
    var, es = cornish_fisher_var_es(mean=0.0, std=np.ones(3), skew=skew, excess_kurtosis=kurt, confidence=0.99)
    for j in range(3):
        v, e = cornish_fisher_var_es(mean=0.0, std=1.0, skew=skew[j], excess_kurtosis=kurt[j], confidence=0.99)
        assert (var[j], es[j]) == pytest.approx((v, e))


def test_pnl_moments_match_scipy():
    rng = np.random.default_rng(5)
    pnl = rng.standard_t(5, size=(400, 3))
    mean, std, skew, kurt = pnl_moments(pnl)
    assert_allclose(mean, pnl.mean(axis=0))
    assert_allclose(std, pnl.std(axis=0, ddof=1))
    assert_allclose(skew, stats.skew(pnl, axis=0, bias=False))
    assert_allclose(kurt, stats.kurtosis(pnl, axis=0, fisher=True, bias=False))
    one = pnl_moments(pnl[:, 0])
    assert isinstance(one[0], float)
    assert one == pytest.approx((mean[0], std[0], skew[0], kurt[0]))


def test_pnl_moments_of_a_constant_have_no_shape():
    assert pnl_moments(np.full(50, 3.7)) == (pytest.approx(3.7), 0.0, 0.0, 0.0)


def test_scale_horizon_per_method():
    assert scale_horizon(2.0, horizon=4, method="historical") == pytest.approx(4.0)
    assert scale_horizon(2.0, horizon=4, method="sqrt_time") == pytest.approx(4.0)
    assert scale_horizon((0.1, 2.0), horizon=4, method="parametric") == pytest.approx((0.4, 4.0))
    assert scale_horizon((0.1, 2.0, -1.0, 6.0), horizon=4, method="cornish_fisher") == pytest.approx(
        (0.4, 4.0, -0.5, 1.5)
    )
    assert_array_equal(scale_horizon(np.eye(2), horizon=10, method="monte_carlo"), 10 * np.eye(2))
    assert scale_horizon(3.0, horizon=1, method="historical") == 3.0
    with pytest.raises(ValueError):
        scale_horizon(1.0, horizon=0, method="historical")
    with pytest.raises(ValueError):
        scale_horizon(1.0, horizon=2, method="garch")
    with pytest.raises(ValueError):
        scale_horizon(1.0, horizon=2, method="parametric")


@settings(max_examples=100, deadline=None)
@given(mean=st.floats(-1, 1), std=st.floats(0.001, 1), horizon=st.integers(1, 250))
def test_parametric_at_a_horizon_uses_mean_h_and_std_root_h(mean, std, horizon):
    m, s = scale_horizon((mean, std), horizon=horizon, method="parametric")
    var, _ = parametric_var_es(mean=m, std=s, confidence=0.99)
    assume(abs(var) > 1e-9)
    assert var == pytest.approx(-mean * horizon + stats.norm.ppf(0.99) * std * math.sqrt(horizon))


def var_es_by_method(pnl: np.ndarray, method: str, confidence: float) -> tuple[float, float]:
    if method == "historical":
        return historical_var_es(pnl, confidence=confidence)
    mean, std, skew, kurt = pnl_moments(pnl)
    if method == "parametric":
        return parametric_var_es(mean=mean, std=std, confidence=confidence)
    return cornish_fisher_var_es(mean=mean, std=std, skew=skew, excess_kurtosis=kurt, confidence=confidence)


spread_pnls = arrays(np.float64, st.integers(8, 200), elements=st.floats(-1e4, 1e4)).filter(
    lambda x: x.std() > 1e-3 * (1 + np.abs(x).max())
)


@settings(max_examples=100, deadline=None)
@given(
    pnl=spread_pnls,
    method=st.sampled_from(["historical", "parametric", "cornish_fisher"]),
    confidence=confidences,
    k=st.floats(1e-2, 1e2),
    shift=st.floats(-1e4, 1e4),
)
def test_every_method_scales_and_shifts_with_the_pnl(pnl, method, confidence, k, shift):
    """VaR(k X) = k VaR(X), VaR(X + a) = VaR(X) - a, and the same for ES, whatever the method."""
    var, es = var_es_by_method(pnl, method, confidence)
    assert es >= var
    tol = 1e-7 * (1 + np.abs(pnl).max())
    var_k, es_k = var_es_by_method(k * pnl, method, confidence)
    assert var_k == pytest.approx(k * var, abs=k * tol)
    assert es_k == pytest.approx(k * es, abs=k * tol)
    var_s, es_s = var_es_by_method(pnl + shift, method, confidence)
    assert var_s == pytest.approx(var - shift, abs=tol + 1e-9 * abs(shift))
    assert es_s == pytest.approx(es - shift, abs=tol + 1e-9 * abs(shift))


@pytest.mark.parametrize("skew", [-2.0, -1.0, -0.3, 0.0, 0.5, 1.5])
def test_cornish_fisher_bounds_are_tight(skew):
    """Just outside the admissible kurtosis interval the expansion does turn back somewhere."""
    s, k_lo, k_hi = cornish_fisher_bounds(skew)
    z = np.linspace(-40, 40, 40001)
    for k in (k_lo - 0.5, k_hi + 0.5):
        assert np.any(np.diff(cornish_fisher_quantile(z, skew=s, excess_kurtosis=k)) < 0)


def test_cornish_fisher_projects_excess_kurtosis_beyond_the_domain():
    """Daily equity kurtosis (~20) is beyond the domain; it is treated as the largest admissible value."""
    _, _, k_hi = cornish_fisher_bounds(-0.5)
    wild = cornish_fisher_var_es(mean=0, std=1, skew=-0.5, excess_kurtosis=20.0, confidence=0.99)
    edge = cornish_fisher_var_es(mean=0, std=1, skew=-0.5, excess_kurtosis=float(k_hi), confidence=0.99)
    assert wild == pytest.approx(edge)
