"""Batch VaR of many portfolios: linear pass and full revaluation."""

import numpy as np
from numpy.testing import assert_allclose

from apps.risk.engine.batch import compute_batch_var, compute_batch_var_full
from apps.risk.engine.types import Holding
from apps.risk.engine.var import historical_var_es


def test_batch_var_equals_per_portfolio_historical_var():
    rng = np.random.default_rng(9)
    exposures = rng.normal(0, 1e5, (30, 12)) * (rng.random((30, 12)) < 0.4)
    returns = rng.standard_t(4, (250, 12)) * 0.01
    out = compute_batch_var(holdings_matrix=exposures, factor_returns=returns, confidence_levels=(0.95, 0.99))
    for level, (var, es) in out.items():
        assert var.shape == es.shape == (30,)
        for k in range(30):
            v, e = historical_var_es(returns @ exposures[k], confidence=level)
            assert_allclose([var[k], es[k]], [v, e])
        assert np.all(es >= var)


def test_full_batch_matches_the_linear_batch_for_linear_portfolios():
    rng = np.random.default_rng(10)
    symbols = ["A", "B", "C"]
    log_moves = rng.normal(0, 0.02, (200, 3))
    portfolios = [
        [Holding("A", "equity", 10.0, 1.0, 100.0, "INR", 1.0), Holding("C", "equity", -5.0, 1.0, 40.0, "INR", 1.0)],
        [Holding("B", "crypto", 2.0, 1.0, 300.0, "INR", 1.0)],
        [],
    ]
    exposures = np.array([[1000.0, 0.0, -200.0], [0.0, 600.0, 0.0], [0.0, 0.0, 0.0]])
    fast = compute_batch_var(holdings_matrix=exposures, factor_returns=np.expm1(log_moves), confidence_levels=(0.99,))
    full = compute_batch_var_full(portfolios=portfolios, symbols=symbols, moves=log_moves, confidence_levels=(0.99,))
    assert_allclose(full[0.99][0], fast[0.99][0], atol=1e-9)
    assert_allclose(full[0.99][1], fast[0.99][1], atol=1e-9)


def test_sparse_exposures_give_the_same_figures_as_dense():
    from scipy import sparse

    rng = np.random.default_rng(12)
    exposures = rng.normal(0, 1e5, (40, 30)) * (rng.random((40, 30)) < 0.2)
    returns = rng.normal(0, 0.01, (120, 30))
    dense = compute_batch_var(holdings_matrix=exposures, factor_returns=returns, confidence_levels=(0.99,))
    sp = compute_batch_var(
        holdings_matrix=sparse.csr_array(exposures), factor_returns=returns, confidence_levels=(0.99,)
    )
    assert_allclose(sp[0.99][0], dense[0.99][0])
    assert_allclose(sp[0.99][1], dense[0.99][1])
