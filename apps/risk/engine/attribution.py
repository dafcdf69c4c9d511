"""Risk attribution: standalone, component (Euler), marginal and incremental VaR per position.

Inputs are an (S, P) matrix of position P&L in base currency (gains positive; columns are positions, rows
scenarios); figures are positive losses as everywhere in the engine (var.py's historical convention:
k = ceil(S (1 - confidence)) worst scenarios, VaR the k-th worst loss, ES their mean loss).

Historical component VaR (Euler allocation by scenario): the portfolio's loss in a scenario is the sum of
the positions' losses, so any average of position losses over a set of scenarios sums to the average
portfolio loss over that set.
- ES components: each position's mean loss over the k tail scenarios; they sum to the portfolio ES.
- VaR components: each position's mean loss over a small kernel of scenarios ranked around the VaR
  scenario (ranks k - m .. k + m, m = max(1, k // 4), clipped to the sample), then rescaled by
  VaR / (kernel mean portfolio loss) so the components sum EXACTLY to the VaR. The kernel smooths the
  noise of a single scenario. When the kernel's mean loss is not positive (a portfolio that cannot lose
  at that level) the single VaR scenario is used, which sums exactly without rescaling.
Parametric component VaR: c_i = e_i' (Sigma e) / sigma_p * z, with e_i the position's factor exposures,
e their sum and sigma_p = sqrt(e' Sigma e); components sum to z sigma_p, the zero-mean normal VaR.
Marginal VaR: component / market value (per unit of base-currency exposure; 0 for zero exposure).
Incremental VaR: VaR(portfolio) - VaR(portfolio without the position), recomputed exactly for every
position at once from the (S, P) matrix of "portfolio minus one position" P&L.
"""

from collections.abc import Sequence

import numpy as np
from scipy.stats import norm

from apps.risk.engine.var import historical_var_es, tail_size


def standalone_var_es(pnl: np.ndarray, *, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Return each position's own historical VaR and ES, (P,) each."""
    x = np.asarray(pnl, dtype=np.float64)
    if x.shape[1] == 0:
        return np.zeros(0), np.zeros(0)
    var, es = historical_var_es(x, confidence=confidence)
    return np.atleast_1d(var), np.atleast_1d(es)


def _kernel_half_width(k: int) -> int:
    return max(1, k // 4)


def component_var_es(pnl: np.ndarray, *, confidence: float) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Return (component VaR (P,), component ES (P,), portfolio VaR, portfolio ES) by historical Euler allocation.

    Components sum exactly (to rounding) to the portfolio figures; see the module docstring.
    """
    x = np.asarray(pnl, dtype=np.float64)
    s, p = x.shape
    total = x.sum(axis=1)
    var, es = historical_var_es(total, confidence=confidence)
    k = tail_size(s, confidence)
    order = np.argsort(total, kind="stable")  # worst (most negative P&L) first
    tail = order[:k]
    comp_es = -x[tail].mean(axis=0)
    tail_loss = -total[tail].mean()
    if tail_loss != 0.0 and np.isfinite(tail_loss):
        comp_es = comp_es * (es / tail_loss)
    m = _kernel_half_width(k)
    lo, hi = max(0, k - 1 - m), min(s, k + m)
    kernel = order[lo:hi]
    kernel_loss = -total[kernel].mean()
    if kernel_loss > 0.0:
        comp_var = -x[kernel].mean(axis=0) * (var / kernel_loss)
    else:
        comp_var = -x[order[k - 1]]
    return comp_var, comp_es, float(var), float(es)


def incremental_var(pnl: np.ndarray, *, confidence: float) -> np.ndarray:
    """Return VaR(all) - VaR(all but position i) for every position i, (P,), recomputed exactly."""
    x = np.asarray(pnl, dtype=np.float64)
    if x.shape[1] == 0:
        return np.zeros(0)
    total = x.sum(axis=1)
    var, _ = historical_var_es(total, confidence=confidence)
    without, _ = historical_var_es(total[:, None] - x, confidence=confidence)
    return var - np.atleast_1d(without)


def marginal_var(component: np.ndarray, exposure: np.ndarray) -> np.ndarray:
    """Return component / exposure (d VaR / d exposure under Euler homogeneity), 0 where exposure is 0."""
    c = np.asarray(component, dtype=np.float64)
    e = np.asarray(exposure, dtype=np.float64)
    safe = np.where(e != 0.0, e, 1.0)
    return np.where(e != 0.0, c / safe, 0.0)


def parametric_components(
    exposures: np.ndarray, cov: np.ndarray, *, confidence: float, horizon_days: int = 1
) -> tuple[np.ndarray, float]:
    """Return (component VaR (P,), portfolio VaR) of zero-mean delta-normal VaR.

    `exposures` is (P, M) base-currency P&L per unit factor move, `cov` the (M, M) daily factor covariance;
    the horizon scales the covariance by h.
    """
    e = np.asarray(exposures, dtype=np.float64)
    c = np.asarray(cov, dtype=np.float64) * horizon_days
    total = e.sum(axis=0)
    sigma_e = c @ total
    variance = float(total @ sigma_e)
    z = norm.ppf(confidence)
    if variance <= 0.0:
        return np.zeros(e.shape[0]), 0.0
    sigma_p = np.sqrt(variance)
    return (e @ sigma_e) / sigma_p * z, float(z * sigma_p)


def totals_by(labels: Sequence[str], values: np.ndarray) -> dict[str, float]:
    """Sum values by label, labels in first-seen order."""
    out: dict[str, float] = {}
    for label, v in zip(labels, np.asarray(values, dtype=np.float64), strict=True):
        out[label] = out.get(label, 0.0) + float(v)
    return out
