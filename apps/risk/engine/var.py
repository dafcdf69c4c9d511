"""Value at Risk and Expected Shortfall from P&L scenarios or P&L moments.

Sign convention: inputs are P&L (gains positive, losses negative); VaR and ES are returned as positive
losses (a portfolio that can lose money has VaR > 0). `confidence` is a fraction such as 0.99 and
alpha = 1 - confidence is the tail probability. Every function accepts scalars or arrays (one value
per portfolio) and returns floats for scalar input, arrays otherwise. ES >= VaR always holds.
"""

import math

import numpy as np
from scipy.stats import norm

HORIZON_METHODS = ("historical", "sqrt_time", "parametric", "cornish_fisher", "monte_carlo")
ERR_CONFIDENCE = "confidence must be strictly between 0 and 1."
ERR_EMPTY = "pnl needs at least one scenario."
ERR_NOT_FINITE = "pnl must be finite: drop scenarios with missing prices before computing VaR."
ERR_METHOD = f"method must be one of {', '.join(HORIZON_METHODS)}."
ERR_HORIZON = "horizon must be a whole number of trading days, at least 1."
ERR_MOMENTS = "parametric and cornish_fisher scaling take a (mean, std) or (mean, std, skew, excess_kurtosis) tuple."


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(ERR_CONFIDENCE)


def _out(x: np.ndarray) -> np.ndarray | float:
    return float(x) if np.ndim(x) == 0 else x


def tail_size(n_scenarios: int, confidence: float) -> int:
    """Number k of worst scenarios that form the tail: k = ceil(S * (1 - confidence)), at least 1.

    A 1e-9 tolerance keeps S * (1 - c) that is an integer up to rounding (500 x 0.01) from rounding up.
    """
    _check_confidence(confidence)
    return max(1, math.ceil(n_scenarios * (1.0 - confidence) - 1e-9))


def historical_var_es(pnl: np.ndarray, *, confidence: float) -> tuple[np.ndarray | float, np.ndarray | float]:
    """Historical-simulation VaR and ES of P&L scenarios `(S,)` or `(S, K)` (K portfolios in columns).

    Quantile convention (no interpolation): with k = ceil(S * (1 - confidence)) (see `tail_size`),
    VaR is the k-th worst loss, i.e. -(k-th smallest P&L), and ES is the mean loss of those k worst
    scenarios (the tail at or beyond VaR). For S = 500 at 99%, k = 5: VaR is the 5th worst loss and ES
    the mean of the 5 worst. VaR is minus numpy's 'inverted_cdf' quantile of the P&L at 1 - confidence
    (except that S (1 - c) within 1e-9 of an integer is not rounded up), and ES >= VaR by construction.
    Uses `np.partition` along axis 0 (selection, no full sort): 10,000 portfolios x 500 scenarios take
    about 50 ms on one core. Scenarios must be finite (a NaN would silently count as a gain), so
    non-finite P&L raises ValueError: drop such scenarios first.
    Returns floats for `(S,)` input and `(K,)` arrays for `(S, K)` input.
    """
    x = np.asarray(pnl, dtype=np.float64)
    if x.shape[0] == 0:
        raise ValueError(ERR_EMPTY)
    if not np.isfinite(x).all():
        raise ValueError(ERR_NOT_FINITE)
    k = tail_size(x.shape[0], confidence)
    tail = np.partition(x, k - 1, axis=0)[:k]
    var = -tail[k - 1]
    es = -tail.mean(axis=0)
    # The mean of k values can round a hair below their maximum when all are equal; keep ES >= VaR exact.
    es = np.maximum(es, var)
    return _out(var), _out(es)


def parametric_var_es(
    *, mean: float | np.ndarray, std: float | np.ndarray, confidence: float
) -> tuple[np.ndarray | float, np.ndarray | float]:
    """Normal (variance-covariance) VaR and ES from the P&L mean and standard deviation.

    With z = Phi^-1(confidence): VaR = -mean + z std and ES = -mean + std phi(z) / (1 - confidence).
    `mean` and `std` are of the P&L over the horizon wanted (see `scale_horizon`).
    """
    _check_confidence(confidence)
    mu = np.asarray(mean, dtype=np.float64)
    sigma = np.asarray(std, dtype=np.float64)
    z = norm.ppf(confidence)
    var = -mu + z * sigma
    es = -mu + sigma * norm.pdf(z) / (1.0 - confidence)
    return _out(var), _out(es)


def cornish_fisher_bounds(skew: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The skew and the interval of excess kurtosis for which the Cornish-Fisher expansion is monotone.

    The expansion w(z) = z + S(z^2-1)/6 + K(z^3-3z)/24 - S^2(2z^3-5z)/36 has
    w'(z) = a z^2 + b z + c with a = K/8 - S^2/6, b = S/3, c = 1 - K/8 + 5 S^2/36; it is increasing in z
    everywhere iff a >= 0 and b^2 <= 4ac. With x = K/8 that is
    x^2 - (A+B) x + A B + S^2/36 <= 0 for A = S^2/6, B = 1 + 5 S^2/36, i.e. x between the roots
    ((A+B) -/+ sqrt((B-A)^2 - S^2/9)) / 2, which exist for |S| <= 6(sqrt 2 - 1) ~ 2.485.
    Returns (skew clipped to that range, lowest K, highest K); at S = 0 the interval is [0, 8].
    """
    s_max = 6.0 * (math.sqrt(2.0) - 1.0)
    s = np.clip(np.asarray(skew, dtype=np.float64), -s_max, s_max)
    a_ = s**2 / 6.0
    b_ = 1.0 + 5.0 * s**2 / 36.0
    root = np.sqrt(np.maximum((b_ - a_) ** 2 - s**2 / 9.0, 0.0))
    return s, 8.0 * ((a_ + b_) - root) / 2.0, 8.0 * ((a_ + b_) + root) / 2.0


def cornish_fisher_quantile(z: np.ndarray | float, *, skew: np.ndarray | float, excess_kurtosis: np.ndarray | float):
    """The Cornish-Fisher standardised quantile w(z) for a standard normal quantile z (no clipping here)."""
    s = np.asarray(skew, dtype=np.float64)
    k = np.asarray(excess_kurtosis, dtype=np.float64)
    z = np.asarray(z, dtype=np.float64)
    return z + s * (z**2 - 1) / 6.0 + k * (z**3 - 3 * z) / 24.0 - s**2 * (2 * z**3 - 5 * z) / 36.0


def cornish_fisher_var_es(
    *,
    mean: float | np.ndarray,
    std: float | np.ndarray,
    skew: float | np.ndarray,
    excess_kurtosis: float | np.ndarray,
    confidence: float,
) -> tuple[np.ndarray | float, np.ndarray | float]:
    """Modified (Cornish-Fisher) VaR and ES from the first four P&L moments.

    VaR = -(mean + std w(z_a)) with z_a = Phi^-1(1 - confidence) and w the Cornish-Fisher expansion (see
    `cornish_fisher_bounds`). ES = -(mean + std E[w(Z) | Z <= z_a]), the integral of the CF quantile
    function over the tail u in (0, 1 - confidence) divided by its width. Substituting u = Phi(z) turns it
    into integrals of z^n phi(z) up to z_a, which have the closed form
    E[w(Z) | Z <= z_a] = -phi(z_a)/alpha (1 + S z_a/6 - K (1 - z_a^2)/24 + S^2 (1 - 2 z_a^2)/36);
    the tests check this against numerical integration of the quantile function.

    Guard: outside its domain of validity the expansion is not monotone (e.g. excess kurtosis above ~8,
    typical of daily equity returns, or negative kurtosis), so the 'quantile' would fall as confidence
    rises. The moments are therefore projected onto the monotone domain first: skew clipped to
    |S| <= 2.485, then excess kurtosis clipped into the admissible interval for that skew. The result is
    a valid quantile function, so VaR is non-decreasing in confidence and ES >= VaR; with S = K = 0 it
    equals `parametric_var_es`. Heavy tails beyond the domain are understated: compare with historical.
    """
    _check_confidence(confidence)
    mu = np.asarray(mean, dtype=np.float64)
    sigma = np.asarray(std, dtype=np.float64)
    s, k_lo, k_hi = cornish_fisher_bounds(skew)
    k = np.clip(np.asarray(excess_kurtosis, dtype=np.float64), k_lo, k_hi)
    alpha = 1.0 - confidence
    z = norm.ppf(alpha)
    w = cornish_fisher_quantile(z, skew=s, excess_kurtosis=k)
    tail_mean = -norm.pdf(z) / alpha * (1 + s * z / 6.0 - k * (1 - z**2) / 24.0 + s**2 * (1 - 2 * z**2) / 36.0)
    var = -(mu + sigma * w)
    es = np.maximum(-(mu + sigma * tail_mean), var)
    return _out(var), _out(es)


def pnl_moments(pnl: np.ndarray) -> tuple:
    """Mean, standard deviation (ddof=1), skew and excess kurtosis of P&L `(S,)` or `(S, K)` along axis 0.

    Skew and kurtosis are the bias-adjusted sample estimators (G1 and G2, as pandas' `skew` and `kurt`);
    they need at least 3 and 4 scenarios and are 0 when the P&L is constant or too short.
    """
    x = np.asarray(pnl, dtype=np.float64)
    n = x.shape[0]
    if n == 0:
        raise ValueError(ERR_EMPTY)
    mean = x.mean(axis=0)
    d = x - mean
    d2 = d * d  # products, not d**3 and d**4: numpy's general power is ~20x slower
    m2 = d2.mean(axis=0)
    m3 = (d2 * d).mean(axis=0)
    m4 = (d2 * d2).mean(axis=0)
    std = np.sqrt(m2 * n / (n - 1)) if n > 1 else np.zeros_like(mean)
    # Treat variance at rounding level of the mean as zero: constant P&L has no shape.
    flat = m2 <= (1e-14 * np.maximum(np.abs(mean), 1e-300)) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        g1 = m3 / m2**1.5
        g2 = m4 / m2**2 - 3.0
        skew = np.sqrt(n * (n - 1)) / (n - 2) * g1 if n > 2 else np.zeros_like(mean)
        kurt = (n - 1) / ((n - 2) * (n - 3)) * ((n + 1) * g2 + 6.0) if n > 3 else np.zeros_like(mean)
    std = np.where(flat, 0.0, std)
    skew = np.where(flat, 0.0, skew)
    kurt = np.where(flat, 0.0, kurt)
    return _out(mean), _out(std), _out(skew), _out(kurt)


def scale_horizon(value, *, horizon: int, method: str):
    """Carry a 1-day figure to an h-day horizon the way `method` does it.

    - "historical" (alias "sqrt_time"): `value` is a 1-day VaR or ES; returns value * sqrt(h). This is
      only the fallback: historical simulation at horizon h should use overlapping h-day returns
      (`returns.horizon_returns`) when the history allows, since sqrt-time assumes i.i.d. returns.
    - "parametric" / "cornish_fisher": `value` is (mean, std) of 1-day P&L; returns (mean h, std sqrt(h)).
      A 4-tuple (mean, std, skew, excess_kurtosis) also gets skew / sqrt(h) and excess kurtosis / h, the
      moments of a sum of h i.i.d. days. Then call `parametric_var_es` / `cornish_fisher_var_es`.
    - "monte_carlo": `value` is the 1-day covariance (or mean vector); returns value * h. Monte Carlo
      simulates h-day returns from the h-scaled covariance (`montecarlo.simulate_returns(horizon=h)`
      does this itself).
    """
    if int(horizon) != horizon or horizon < 1:
        raise ValueError(ERR_HORIZON)
    if method not in HORIZON_METHODS:
        raise ValueError(ERR_METHOD)
    h = float(horizon)
    if method in ("historical", "sqrt_time"):
        return _out(np.asarray(value, dtype=np.float64) * math.sqrt(h))
    if method == "monte_carlo":
        return _out(np.asarray(value, dtype=np.float64) * h)
    if not isinstance(value, tuple | list) or len(value) not in (2, 4):
        raise ValueError(ERR_MOMENTS)
    mean = _out(np.asarray(value[0], dtype=np.float64) * h)
    std = _out(np.asarray(value[1], dtype=np.float64) * math.sqrt(h))
    if len(value) == 2:
        return mean, std
    skew = _out(np.asarray(value[2], dtype=np.float64) / math.sqrt(h))
    kurt = _out(np.asarray(value[3], dtype=np.float64) / h)
    return mean, std, skew, kurt
