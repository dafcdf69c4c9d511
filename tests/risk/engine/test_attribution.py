"""Attribution: component VaR sums to VaR, scaling, incremental VaR by recomputation."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.stats import norm

from apps.risk.engine import attribution
from apps.risk.engine.var import historical_var_es

matrices = st.tuples(
    st.integers(min_value=20, max_value=400),  # scenarios
    st.integers(min_value=1, max_value=12),  # positions
    st.integers(min_value=0, max_value=2**31 - 1),  # seed
    st.sampled_from([0.9, 0.95, 0.975, 0.99]),
)


def _pnl(s, p, seed):
    rng = np.random.default_rng(seed)
    scale = rng.uniform(0.1, 10.0, p)
    return rng.standard_t(4, (s, p)) * scale + rng.normal(0, 0.1, p)


@settings(max_examples=150, deadline=None)
@given(matrices)
def test_components_sum_to_portfolio_var_and_es(case):
    s, p, seed, level = case
    pnl = _pnl(s, p, seed)
    comp_var, comp_es, var, es = attribution.component_var_es(pnl, confidence=level)
    direct_var, direct_es = historical_var_es(pnl.sum(axis=1), confidence=level)
    assert_allclose([var, es], [direct_var, direct_es])
    assert_allclose(comp_var.sum(), var, rtol=1e-9, atol=1e-9)
    assert_allclose(comp_es.sum(), es, rtol=1e-9, atol=1e-9)


@settings(max_examples=100, deadline=None)
@given(matrices, st.floats(min_value=0.01, max_value=1000.0))
def test_scaling_every_position_by_k_scales_every_figure_by_k(case, k):
    s, p, seed, level = case
    pnl = _pnl(s, p, seed)
    base = attribution.component_var_es(pnl, confidence=level)
    scaled = attribution.component_var_es(k * pnl, confidence=level)
    for a, b in zip(base, scaled, strict=True):
        assert_allclose(b, k * np.asarray(a), rtol=1e-9, atol=1e-9)
    assert_allclose(
        attribution.incremental_var(k * pnl, confidence=level),
        k * attribution.incremental_var(pnl, confidence=level),
        rtol=1e-9,
        atol=1e-9,
    )


@settings(max_examples=60, deadline=None)
@given(matrices)
def test_incremental_var_equals_recomputation_without_the_position(case):
    s, p, seed, level = case
    pnl = _pnl(s, p, seed)
    inc = attribution.incremental_var(pnl, confidence=level)
    var, _ = historical_var_es(pnl.sum(axis=1), confidence=level)
    for i in range(p):
        without, _ = historical_var_es(np.delete(pnl, i, axis=1).sum(axis=1), confidence=level)
        assert_allclose(inc[i], var - without, atol=1e-9)


def test_long_only_equity_var_is_the_direct_quantile_of_its_pnl():
    rng = np.random.default_rng(11)
    returns = rng.standard_t(5, (500, 4)) * 0.01
    values = np.array([1e5, 2e5, 5e4, 3e5])
    pnl = np.expm1(returns) * values
    _, _, var, _ = attribution.component_var_es(pnl, confidence=0.99)
    # The k-th worst loss, k = ceil(S (1 - c)): the inverted-CDF quantile of the P&L at 1 - c, sign flipped.
    assert_allclose(var, -np.quantile(pnl.sum(axis=1), 0.01, method="inverted_cdf"))
    assert_allclose(var, -np.sort(pnl.sum(axis=1))[4])


def test_standalone_var_is_each_positions_own_var():
    pnl = _pnl(250, 3, 5)
    standalone, _ = attribution.standalone_var_es(pnl, confidence=0.95)
    for i in range(3):
        assert_allclose(standalone[i], historical_var_es(pnl[:, i], confidence=0.95)[0])


def test_parametric_components_sum_to_normal_var():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(4, 4))
    cov = a @ a.T * 1e-4
    exposures = rng.normal(0, 1e5, (6, 4))
    comp, var = attribution.parametric_components(exposures, cov, confidence=0.99, horizon_days=10)
    total = exposures.sum(axis=0)
    assert_allclose(var, norm.ppf(0.99) * np.sqrt(10 * total @ cov @ total))
    assert_allclose(comp.sum(), var)


def test_marginal_var_is_component_per_unit_exposure_and_zero_without_exposure():
    assert_allclose(attribution.marginal_var(np.array([10.0, 5.0]), np.array([100.0, 0.0])), [0.1, 0.0])


def test_totals_by_label():
    assert attribution.totals_by(["equity", "bond", "equity"], np.array([1.0, 2.0, 3.0])) == {
        "equity": 4.0,
        "bond": 2.0,
    }
