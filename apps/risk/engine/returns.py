"""From aligned closes to the returns and covariances every risk method starts from.

Conventions:
- arrays are time-major, oldest first: prices `(T, N)`, returns `(T-1, N)`;
- a missing value is NaN and stays NaN: nothing here invents data beyond the bounded forward fill of
  `align_prices`, and every series that cannot be used is named in a warning, never dropped silently;
- returns are daily; covariances and volatilities are daily (not annualised) unless a name says otherwise.
"""

import numpy as np

from apps.risk.engine.types import MarketData

RETURN_KINDS = ("log", "simple")
ERR_RETURN_KIND = "kind must be 'log' or 'simple'."
ERR_HORIZON = "horizon must be a whole number of trading days, at least 1."
ERR_LAMBDA = "lam (the EWMA decay) must be strictly between 0 and 1."
ERR_FILL = "max_fill_days must be zero or more."


def _as_2d(returns: np.ndarray) -> np.ndarray:
    arr = np.asarray(returns, dtype=np.float64)
    return arr[:, None] if arr.ndim == 1 else arr


def align_prices(market: MarketData, *, max_fill_days: int) -> tuple[np.ndarray, list[str]]:
    """Forward-fill each gap of at most `max_fill_days` missing closes; leave longer gaps NaN and report them.

    A gap is a run of NaN after a series' first close. A gap of length <= `max_fill_days` is filled in full
    with the last close before it (exchange holidays differ between markets, so these are routine and not
    reported). A longer gap is left NaN in full, not partly filled: a stale price held for weeks would show
    as a run of zero returns and understate risk. The same holds for a gap at the end (a stale last price).
    NaNs before a series' first close are left alone: that is a shorter history, which `usable_history`
    reports. Returns the filled `(T, N)` float64 prices and one warning per unfilled gap, naming the symbol
    and the dates, e.g. "TCS: 12 days without a close (2024-03-01 to 2024-03-18), more than the 5-day
    fill limit; left missing".
    """
    if max_fill_days < 0:
        raise ValueError(ERR_FILL)
    prices = np.array(market.prices, dtype=np.float64, copy=True)
    if prices.ndim != 2 or prices.size == 0:
        return prices, []
    n_rows = prices.shape[0]
    valid = np.isfinite(prices)
    rows = np.arange(n_rows)[:, None]
    # Index of the last valid close at or before t, and of the first valid close at or after t (T if none).
    last_valid = np.maximum.accumulate(np.where(valid, rows, -1), axis=0)
    next_valid = np.minimum.accumulate(np.where(valid, rows, n_rows)[::-1], axis=0)[::-1]
    gap_len = next_valid - last_valid - 1  # length of the NaN run t belongs to (meaningful where ~valid)
    in_gap = ~valid & (last_valid >= 0)
    fill = in_gap & (gap_len <= max_fill_days)
    filled_from = np.where(fill, last_valid, 0)
    cols = np.broadcast_to(np.arange(prices.shape[1]), prices.shape)
    prices[fill] = prices[filled_from[fill], cols[fill]]

    warnings: list[str] = []
    unfilled = in_gap & ~fill
    dates = market.dates
    for j in np.flatnonzero(unfilled.any(axis=0)):
        col = unfilled[:, j].astype(np.int8)
        edges = np.diff(np.concatenate(([0], col, [0])))
        starts = np.flatnonzero(edges == 1)
        ends = np.flatnonzero(edges == -1) - 1
        for start, end in zip(starts, ends, strict=True):
            days = end - start + 1
            where = "at the end of the history" if end == n_rows - 1 else "mid-history"
            warnings.append(
                f"{market.symbols[j]}: {days} days without a close ({dates[start]} to {dates[end]}, {where}), "
                f"more than the {max_fill_days}-day fill limit; left missing"
            )
    return prices, warnings


def to_returns(prices: np.ndarray, *, kind: str = "log") -> np.ndarray:
    """Daily returns `(T-1, N)` (or `(T-1,)` for a 1-D series): log ln(p_t/p_{t-1}) or simple p_t/p_{t-1} - 1.

    A NaN close makes the returns on both sides of it NaN; a non-positive close gives NaN log returns.
    """
    if kind not in RETURN_KINDS:
        raise ValueError(ERR_RETURN_KIND)
    p = np.asarray(prices, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = p[1:] / p[:-1]
        if kind == "log":
            out = np.log(ratio)
            out[~(ratio > 0)] = np.nan
            return out
        return ratio - 1.0


def usable_history(
    returns: np.ndarray, symbols: tuple[str, ...], *, min_days: int, lookback: int
) -> tuple[np.ndarray, list[str]]:
    """Mark the series with at least `min_days` finite returns among the last `lookback` rows.

    Returns a boolean mask `(N,)` and one warning per series left out, in the form
    "TCS: 42 days of history (needs 60); left out of the scenarios".
    """
    r = _as_2d(returns)
    window = r[-lookback:] if lookback > 0 else r[:0]
    counts = np.isfinite(window).sum(axis=0)
    mask = counts >= min_days
    warnings = [
        f"{symbols[j]}: {int(counts[j])} days of history (needs {min_days}); left out of the scenarios"
        for j in np.flatnonzero(~mask)
    ]
    return mask, warnings


def horizon_returns(returns: np.ndarray, *, horizon: int) -> np.ndarray:
    """Overlapping h-day log returns: row i is the sum of daily log returns i .. i+h-1.

    From `(T, N)` daily log returns this gives `(T-h+1, N)` scenarios (a 1-D input gives 1-D output); any
    NaN inside a window makes that window NaN. The windows overlap by h-1 days, so consecutive scenarios
    are strongly dependent: there are T-h+1 rows but only about T/h independent observations, which
    makes tail quantiles noisier than the row count suggests, and the rows must not be fed to tests that
    assume independence (e.g. Christoffersen). They are still preferred over scaling a 1-day VaR by
    sqrt(h), which assumes i.i.d. normal-like returns. Log returns are additive over time, which is why
    the sum is exact; convert to simple returns with `np.expm1` for revaluation.
    """
    if int(horizon) != horizon or horizon < 1:
        raise ValueError(ERR_HORIZON)
    r = np.asarray(returns, dtype=np.float64)
    if horizon == 1:
        return r.copy()
    n_rows = r.shape[0]
    if n_rows < horizon:
        return np.empty((0, *r.shape[1:]))
    bad = ~np.isfinite(r)
    zero_pad = np.zeros((1, *r.shape[1:]))
    sums = np.concatenate((zero_pad, np.cumsum(np.where(bad, 0.0, r), axis=0)))
    nans = np.concatenate((zero_pad, np.cumsum(bad, axis=0)))
    out = sums[horizon:] - sums[:-horizon]
    out[(nans[horizon:] - nans[:-horizon]) > 0] = np.nan
    return out


def _complete_rows(returns: np.ndarray) -> np.ndarray:
    r = _as_2d(returns)
    return r[np.isfinite(r).all(axis=1)]


def sample_covariance(returns: np.ndarray) -> np.ndarray:
    """Sample covariance `(N, N)` of daily returns (demeaned, ddof=1) over the complete rows only.

    A row with any NaN is skipped (listwise deletion), which keeps the matrix positive semi-definite;
    pass only the usable series (`usable_history`) so that one short history does not cut every series'
    sample. Fewer than two complete rows give a NaN matrix.
    """
    r = _complete_rows(returns)
    n = r.shape[1]
    if r.shape[0] < 2:
        return np.full((n, n), np.nan)
    centred = r - r.mean(axis=0)
    return centred.T @ centred / (r.shape[0] - 1)


def ewma_covariance(returns: np.ndarray, *, lam: float) -> np.ndarray:
    """RiskMetrics EWMA covariance `(N, N)` of daily returns, the forecast for the day after the last row.

    Recursion (zero mean, as RiskMetrics): S_0 = the equally weighted second moment mean(r r') of the
    sample; S_k = lam S_{k-1} + (1 - lam) r_k r_k' for each complete row k = 1..n. The result is S_n, a
    weighted average of r_k r_k' with weights (1-lam) lam^(n-k) plus lam^n on S_0 (they sum to one), so a
    short sample is not biased towards zero. Rows with any NaN are skipped (they neither update nor decay
    the estimate), which keeps the matrix positive semi-definite. No complete row gives a NaN matrix.
    Computed in closed form with one matrix product, not a Python loop.
    """
    if not 0.0 < lam < 1.0:
        raise ValueError(ERR_LAMBDA)
    r = _complete_rows(returns)
    n_obs, n = r.shape
    if n_obs == 0:
        return np.full((n, n), np.nan)
    initial = r.T @ r / n_obs
    weights = (1.0 - lam) * lam ** np.arange(n_obs - 1, -1, -1, dtype=np.float64)
    cov = (r * weights[:, None]).T @ r + lam**n_obs * initial
    return (cov + cov.T) / 2.0


def ewma_volatility(returns_1d: np.ndarray, *, lam: float) -> float:
    """Daily RiskMetrics EWMA volatility of one return series (NaN days skipped); see `ewma_covariance`."""
    r = np.asarray(returns_1d, dtype=np.float64).ravel()
    return float(np.sqrt(ewma_covariance(r[:, None], lam=lam)[0, 0]))
