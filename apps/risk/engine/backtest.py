"""VaR backtesting: out-of-sample rolling VaR, exception counts and the standard coverage tests.

A hit (exception) on day t is a realised loss strictly greater than the VaR forecast for t, i.e.
pnl_t < -VaR_t with VaR a positive loss. Likelihood-ratio statistics use 0 log 0 = 0, so zero
exceptions and all exceptions are handled without special cases.
"""

from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.special import xlog1py, xlogy
from scipy.stats import binom, chi2

from apps.risk.engine.var import cornish_fisher_var_es, historical_var_es, parametric_var_es, pnl_moments

BACKTEST_METHODS = ("historical", "parametric", "cornish_fisher")
GREEN_LIMIT = 0.95  # Basel: cumulative binomial probability below which the zone is green
YELLOW_LIMIT = 0.9999  # ... and below which it is yellow; red otherwise
ERR_METHOD = f"method must be one of {', '.join(BACKTEST_METHODS)}."
ERR_WINDOW = "window must be at least 2 and shorter than the P&L series."
ERR_COUNTS = "exceptions must be between 0 and observations, and observations at least 1."
ERR_CONFIDENCE = "confidence must be strictly between 0 and 1."


@dataclass(frozen=True)
class BacktestResult:
    """A rolling out-of-sample backtest. Arrays are aligned: entry i is day `window + i` of the input."""

    method: str
    confidence: float
    window: int
    var: np.ndarray  # VaR forecast for each tested day, from the `window` days before it only
    es: np.ndarray  # ES forecast on the same basis
    pnl: np.ndarray  # realised P&L of each tested day
    hits: np.ndarray  # bool: pnl < -var
    exceptions: int
    observations: int
    exception_rate: float
    kupiec: tuple[float, float]  # (LR statistic, p-value), chi2(1)
    christoffersen: tuple[float, float]  # independence (LR, p), chi2(1)
    conditional_coverage: tuple[float, float]  # (LR, p), chi2(2)
    basel_zone: str  # green, yellow or red
    dates: np.ndarray = field(default_factory=lambda: np.array([], dtype="datetime64[D]"))  # tested days, if given


def _check_counts(exceptions: int, observations: int, confidence: float) -> None:
    if observations < 1 or not 0 <= exceptions <= observations:
        raise ValueError(ERR_COUNTS)
    if not 0.0 < confidence < 1.0:
        raise ValueError(ERR_CONFIDENCE)


def kupiec_pof(*, exceptions: int, observations: int, confidence: float) -> tuple[float, float]:
    """Kupiec's proportion-of-failures test: (LR statistic, p-value from chi2 with 1 degree of freedom).

    LR = -2 ln[(1-p)^(n-x) p^x] + 2 ln[(1-x/n)^(n-x) (x/n)^x] with p = 1 - confidence; x = 0 and x = n
    are handled by 0 ln 0 = 0. A small p-value rejects the VaR model's coverage.
    """
    _check_counts(exceptions, observations, confidence)
    x, n, p = float(exceptions), float(observations), 1.0 - confidence
    pi = x / n
    null = xlog1py(n - x, -p) + xlogy(x, p)
    alt = xlog1py(n - x, -pi) + xlogy(x, pi)
    stat = max(-2.0 * (null - alt), 0.0)
    return float(stat), float(chi2.sf(stat, 1))


def christoffersen_independence(hits: np.ndarray) -> tuple[float, float]:
    """Christoffersen's independence test of a hit sequence: (LR statistic, p-value, chi2(1)).

    Compares a first-order Markov chain (probability of a hit after a hit pi11, after no hit pi01) with
    independent hits (one probability pi). Fewer than two days gives (0.0, 1.0).
    """
    h = np.asarray(hits, dtype=bool).ravel()
    if h.size < 2:
        return 0.0, 1.0
    prev, cur = h[:-1], h[1:]
    n00 = float(np.sum(~prev & ~cur))
    n01 = float(np.sum(~prev & cur))
    n10 = float(np.sum(prev & ~cur))
    n11 = float(np.sum(prev & cur))
    pi = (n01 + n11) / (n00 + n01 + n10 + n11)
    pi01 = n01 / (n00 + n01) if n00 + n01 > 0 else 0.0
    pi11 = n11 / (n10 + n11) if n10 + n11 > 0 else 0.0
    null = xlog1py(n00 + n10, -pi) + xlogy(n01 + n11, pi)
    alt = xlog1py(n00, -pi01) + xlogy(n01, pi01) + xlog1py(n10, -pi11) + xlogy(n11, pi11)
    stat = max(-2.0 * (null - alt), 0.0)
    return float(stat), float(chi2.sf(stat, 1))


def conditional_coverage(hits: np.ndarray, *, confidence: float) -> tuple[float, float]:
    """Christoffersen's conditional coverage: LR_pof (Kupiec, on all days) + LR_ind; p-value from chi2(2)."""
    h = np.asarray(hits, dtype=bool).ravel()
    if h.size == 0:
        return 0.0, 1.0
    pof, _ = kupiec_pof(exceptions=int(h.sum()), observations=h.size, confidence=confidence)
    ind, _ = christoffersen_independence(h)
    stat = pof + ind
    return float(stat), float(chi2.sf(stat, 2))


def basel_zone(*, exceptions: int, observations: int = 250, confidence: float = 0.99) -> str:
    """Basel traffic light: the zone of P(X <= exceptions), X ~ Binomial(observations, 1 - confidence).

    Green below 95%, yellow below 99.99%, red otherwise. For 250 days at 99%: green 0-4, yellow 5-9,
    red 10 or more.
    """
    _check_counts(exceptions, observations, confidence)
    cumulative = binom.cdf(exceptions, observations, 1.0 - confidence)
    if cumulative < GREEN_LIMIT:
        return "green"
    if cumulative < YELLOW_LIMIT:
        return "yellow"
    return "red"


def rolling_var_backtest(
    pnl: np.ndarray, *, window: int, confidence: float, method: str = "historical"
) -> BacktestResult:
    """Backtest a VaR method on one P&L series `(T,)` (gains positive), out of sample.

    For each day t = window .. T-1 the VaR and ES forecast uses P&L days t-window .. t-1 only (never day
    t), with `historical_var_es`, `parametric_var_es` (window mean and std, ddof=1) or
    `cornish_fisher_var_es` (window moments). All windows are computed at once from a
    `sliding_window_view`. Observations = T - window. The Basel zone is evaluated at the observed count
    and `confidence` (the regulatory setting is 250 days at 99%). P&L must be finite.
    """
    if method not in BACKTEST_METHODS:
        raise ValueError(ERR_METHOD)
    x = np.asarray(pnl, dtype=np.float64).ravel()
    if window < 2 or window >= x.size:
        raise ValueError(ERR_WINDOW)
    windows = sliding_window_view(x[:-1], window).T  # (window, T - window): column i is the past of day window+i
    if method == "historical":
        var, es = historical_var_es(windows, confidence=confidence)
    elif method == "parametric":
        mean, std, _, _ = pnl_moments(windows)
        var, es = parametric_var_es(mean=mean, std=std, confidence=confidence)
    else:
        mean, std, skew, kurt = pnl_moments(windows)
        var, es = cornish_fisher_var_es(mean=mean, std=std, skew=skew, excess_kurtosis=kurt, confidence=confidence)
    var = np.atleast_1d(np.asarray(var, dtype=np.float64))
    es = np.atleast_1d(np.asarray(es, dtype=np.float64))
    realised = x[window:].copy()
    hits = realised < -var
    exceptions = int(hits.sum())
    observations = int(hits.size)
    return BacktestResult(
        method=method,
        confidence=confidence,
        window=window,
        var=var,
        es=es,
        pnl=realised,
        hits=hits,
        exceptions=exceptions,
        observations=observations,
        exception_rate=exceptions / observations,
        kupiec=kupiec_pof(exceptions=exceptions, observations=observations, confidence=confidence),
        christoffersen=christoffersen_independence(hits),
        conditional_coverage=conditional_coverage(hits, confidence=confidence),
        basel_zone=basel_zone(exceptions=exceptions, observations=observations, confidence=confidence),
    )
