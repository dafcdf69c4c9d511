"""VaR and ES of many portfolios at once, for the recalculate-everything task's quick pass.

`compute_batch_var` is LINEAR: portfolio k's P&L in scenario s is sum_n returns[s, n] x exposures[k, n],
with `holdings_matrix[k, n]` the base-currency exposure of portfolio k to factor n (market value for
linear instruments, delta cash for options, notional for futures) and `factor_returns[s, n]` the factor's
simple return in scenario s (pass np.expm1 of log returns). Options' gamma and vega, and bonds' convexity,
are ignored: it is the delta approximation, cheap enough for 10,000 portfolios in one matrix product.
VaR and ES follow var.historical_var_es (k-th worst loss, mean of the k worst), losses positive.

`compute_batch_var_full` fully revalues each portfolio (revalue.position_pnl) under shared scenarios and
is the exact, slower pass for portfolios holding options or bonds.
"""

from collections.abc import Iterable, Sequence

import numpy as np
from scipy import sparse

from apps.risk.engine import revalue
from apps.risk.engine.types import Holding
from apps.risk.engine.var import historical_var_es

ERR_SHAPES = "holdings_matrix is (K, N) and factor_returns (S, N): the factor counts must match."


def compute_batch_var(
    *,
    holdings_matrix: np.ndarray | sparse.sparray | sparse.spmatrix,
    factor_returns: np.ndarray,
    confidence_levels: Iterable[float],
) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """Return {confidence: (var (K,), es (K,))} of the linear P&L returns @ exposures.T (see the module docstring).

    `holdings_matrix` may be a scipy.sparse matrix (CSR is best): with ~50 positions per portfolio among
    thousands of factors the sparse product does a small fraction of the dense one's work.
    """
    r = np.asarray(factor_returns, dtype=np.float64)
    if sparse.issparse(holdings_matrix):
        e = holdings_matrix
        if len(e.shape) != 2 or r.ndim != 2 or e.shape[1] != r.shape[1]:
            raise ValueError(ERR_SHAPES)
        pnl = np.ascontiguousarray(np.asarray(e @ r.T).T)  # (S, K)
    else:
        e = np.asarray(holdings_matrix, dtype=np.float64)
        if e.ndim != 2 or r.ndim != 2 or e.shape[1] != r.shape[1]:
            raise ValueError(ERR_SHAPES)
        pnl = r @ e.T  # (S, K)
    out: dict[float, tuple[np.ndarray, np.ndarray]] = {}
    for level in confidence_levels:
        v, es = historical_var_es(pnl, confidence=level)
        out[level] = (np.atleast_1d(v), np.atleast_1d(es))
    return out


def compute_batch_var_full(
    *,
    portfolios: Sequence[Sequence[Holding]],
    symbols: Sequence[str],
    moves: np.ndarray,
    confidence_levels: Iterable[float],
    horizon_days: int = 1,
) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """Return {confidence: (var (K,), es (K,))} by full revaluation of each portfolio under `moves`.

    `moves` is (S, N) over `symbols` in revalue.py's convention (log returns; yield changes for bond
    columns). Positions whose driver is not among `symbols` have zero P&L.
    """
    levels = list(confidence_levels)
    m = np.asarray(moves, dtype=np.float64)
    totals = np.zeros((m.shape[0], len(portfolios)))
    for k, holdings in enumerate(portfolios):
        if holdings:
            book = revalue.prepare_book(holdings, symbols=symbols)
            totals[:, k] = revalue.position_pnl(book, m, horizon_days=horizon_days).sum(axis=1)
    out: dict[float, tuple[np.ndarray, np.ndarray]] = {}
    for level in levels:
        v, es = historical_var_es(totals, confidence=level)
        out[level] = (np.atleast_1d(v), np.atleast_1d(es))
    return out
