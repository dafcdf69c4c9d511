"""The composite risk score: features in [0, 1], a weighted mean, and a severity by thresholds.

Feature names (the keys of RiskConfig.score_weights): var_utilisation, volatility_regime, concentration,
drawdown, gamma. Each helper below maps one raw figure to [0, 1], where 0 is benign and 1 is the level
that counts as fully alarming; a NaN or undefined input maps to 0.
"""

import math

import numpy as np

from apps.risk.engine.types import ScoreResult

FEATURES = ("var_utilisation", "volatility_regime", "concentration", "drawdown", "gamma")
DEFAULT_WEIGHTS = {
    "var_utilisation": 0.35,
    "volatility_regime": 0.2,
    "concentration": 0.2,
    "drawdown": 0.15,
    "gamma": 0.1,
}
SEVERITIES = ("NONE", "LOW", "MEDIUM", "HIGH")
ERR_THRESHOLDS = "Thresholds must satisfy 0 <= low <= medium <= high <= 1."
ERR_WEIGHTS = "Weights must be finite and zero or more."


def _unit(x: float) -> float:
    """Clip to [0, 1]; NaN becomes 0."""
    x = float(x)
    return 0.0 if math.isnan(x) else min(max(x, 0.0), 1.0)


def severity_for(score: float, *, low: float, medium: float, high: float) -> str:
    """NONE below `low`, LOW from `low`, MEDIUM from `medium`, HIGH from `high` (inclusive lower bounds)."""
    if score >= high:
        return "HIGH"
    if score >= medium:
        return "MEDIUM"
    if score >= low:
        return "LOW"
    return "NONE"


def risk_score(
    *, features: dict[str, float], weights: dict[str, float], low: float, medium: float, high: float
) -> ScoreResult:
    """Weighted mean of the features (each clipped to [0, 1]) with the weights normalised to sum to one.

    A weighted feature missing from `features` counts as 0, appears in the result's `features` as 0.0 and
    is listed in `missing`, so the caller can warn. Features without a weight are reported (clipped) but
    do not count. Empty weights, or weights summing to zero, fall back to DEFAULT_WEIGHTS (the
    RiskConfig defaults). The result's `weights` are the normalised ones.
    """
    if not 0.0 <= low <= medium <= high <= 1.0:
        raise ValueError(ERR_THRESHOLDS)
    if any(not math.isfinite(w) or w < 0 for w in weights.values()):
        raise ValueError(ERR_WEIGHTS)
    total = float(sum(weights.values()))
    if total <= 0:
        weights, total = DEFAULT_WEIGHTS, float(sum(DEFAULT_WEIGHTS.values()))
    norm_weights = {name: float(w) / total for name, w in weights.items()}
    missing = tuple(name for name in norm_weights if name not in features)
    clipped = {name: _unit(value) for name, value in features.items()}
    for name in missing:
        clipped[name] = 0.0
    score = _unit(sum(w * clipped[name] for name, w in norm_weights.items()))
    return ScoreResult(
        score=score,
        severity=severity_for(score, low=low, medium=medium, high=high),
        features=clipped,
        weights=norm_weights,
        missing=missing,
    )


def var_utilisation_feature(*, var: float, market_value: float, limit_fraction: float) -> float:
    """VaR as a share of its limit: var / (limit_fraction x |market_value|), clipped to [0, 1].

    1.0 means VaR has reached the limit (e.g. 5% of value). Pass gross exposure as `market_value` for a
    book whose net value is near zero. A zero value or limit gives 1.0 if VaR is positive, else 0.0.
    """
    limit = abs(limit_fraction * market_value)
    if not limit > 0:
        return 1.0 if var > 0 else 0.0
    return _unit(var / limit)


def volatility_regime_feature(*, short_vol: float, long_vol: float) -> float:
    """How far short-term volatility runs above long-term: ratio 1 (or less) -> 0, 2 or more -> 1, linear."""
    if not long_vol > 0:
        return 0.0
    return _unit(short_vol / long_vol - 1.0)


def concentration_feature(weights: np.ndarray) -> float:
    """Herfindahl index H of the absolute weights (renormalised), mapped from [1/n, 1] to [0, 1].

    (H - 1/n) / (1 - 1/n): 0 for n equal positions, 1 for a single position (n = 1 gives 1.0); no
    positions or all-zero weights give 0.0.
    """
    w = np.abs(np.asarray(weights, dtype=np.float64).ravel())
    w = w[np.isfinite(w)]
    total = w.sum()
    if w.size == 0 or not total > 0:
        return 0.0
    if w.size == 1:
        return 1.0
    h = float(np.sum((w / total) ** 2))
    n = w.size
    return _unit((h - 1.0 / n) / (1.0 - 1.0 / n))


def drawdown_feature(*, current_drawdown: float, scale: float = 0.2) -> float:
    """Current drawdown (positive fraction) over `scale`: 0 at the peak, 1 at a fall of `scale` (20%) or more."""
    return _unit(current_drawdown / scale) if scale > 0 else 0.0


def gamma_feature(*, gamma_pnl_1pct: float, market_value: float, scale: float = 0.01) -> float:
    """Loss from short gamma for a 1% move of the underlyings, as a share of `scale` x |market value|.

    `gamma_pnl_1pct` is P&L (gains positive), e.g. sum of 0.5 gamma (0.01 S)^2: only a loss counts
    (long gamma gains on a move and scores 0); a loss of 1% of value (scale) or more scores 1.
    """
    denominator = abs(scale * market_value)
    loss = max(-float(gamma_pnl_1pct), 0.0)
    if not denominator > 0:
        return 1.0 if loss > 0 else 0.0
    return _unit(loss / denominator)
