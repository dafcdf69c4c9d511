"""The multivariate anomaly detector: scikit-learn's IsolationForest over the trade features.

Unsupervised: it is fitted on recent trades as they are (a few anomalies among them do no harm) and scores
how easily a trade is isolated from them. The score is the s(x) of Liu, Ting and Zhou (2008),
s(x) = 2 ** (-E[h(x)] / c(psi)), where E[h(x)] is the mean path length that isolates x over the trees and
c(psi) the mean path length of an unsuccessful search in a binary tree of the subsample size psi.
scikit-learn's `score_samples` returns -s(x), so the score is `-score_samples(x)`, clipped to [0, 1]
(it is in (0, 1] by construction): about 0.5 or less for ordinary trades, towards 1 for trades isolated
in very few splits. A trade with a feature that is not finite (a notional without an FX rate) is not
scored (NaN).

Deterministic: the same features, parameters and seed give the same forest and the same scores.
scikit-learn is imported when a detector is fitted or scored, not when this module is.
"""

from dataclasses import dataclass

import numpy as np

from apps.alerts.engine.surveillance import FEATURES

DEFAULT_SEED = 2024
# The features the detector looks at by default (surveillance.FEATURES explains each): the ones that did best
# on the training period of `python -m bench.surveillance` (part c). Notional size is left to the z-score rule
# and time of day and side only added noise there.
DEFAULT_FEATURES = ("trades_1m", "trades_1h", "symbol_share", "symbol_seen", "class_share")
ERR_FEATURES = "Unknown detector feature(s): {names}; known: {known}."
ERR_SHAPE = "Give the detector a (trades x {count}) matrix of its features; got shape {shape}."
ERR_TOO_FEW = "A detector needs at least {minimum} trades with finite features to learn from; got {count}."
MIN_SAMPLES = 50


@dataclass(frozen=True)
class DetectorParams:
    """How a detector is fitted: the features it looks at (names from FEATURES), the forest, the seed."""

    features: tuple[str, ...] = DEFAULT_FEATURES
    n_estimators: int = 100
    max_samples: int = 256
    seed: int = DEFAULT_SEED

    def as_dict(self) -> dict:
        return {
            "features": list(self.features),
            "n_estimators": self.n_estimators,
            "max_samples": self.max_samples,
            "seed": self.seed,
        }


def feature_columns(names) -> np.ndarray:
    """Return the column numbers of the named features in a trade_features() matrix."""
    unknown = [n for n in names if n not in FEATURES]
    if unknown:
        raise ValueError(ERR_FEATURES.format(names=", ".join(unknown), known=", ".join(FEATURES)))
    return np.array([FEATURES.index(n) for n in names], dtype=np.int64)


def finite_rows(matrix: np.ndarray) -> np.ndarray:
    """Return which rows of a feature matrix can be scored (every feature finite)."""
    return np.isfinite(matrix).all(axis=1) if matrix.size else np.zeros(len(matrix), dtype=bool)


def detector_fit(features: np.ndarray, *, params: DetectorParams | None = None):
    """Fit an IsolationForest on the rows whose features are all finite.

    `features` holds the columns params.features, in that order (trade_features(..., names=params.features)).
    """
    from sklearn.ensemble import IsolationForest

    params = params or DetectorParams()
    feature_columns(params.features)
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(params.features):
        raise ValueError(ERR_SHAPE.format(shape=x.shape, count=len(params.features)))
    x = x[finite_rows(x)]
    if len(x) < MIN_SAMPLES:
        raise ValueError(ERR_TOO_FEW.format(minimum=MIN_SAMPLES, count=len(x)))
    forest = IsolationForest(
        n_estimators=params.n_estimators,
        max_samples=min(params.max_samples, len(x)),
        contamination="auto",
        random_state=params.seed,
        n_jobs=1,
    )
    return forest.fit(x)


def detector_scores(estimator, features: np.ndarray) -> np.ndarray:
    """Return each row's anomaly score in [0, 1] (s(x) = -score_samples), NaN where a feature is not finite.

    `features` holds the columns the estimator was fitted on, in the same order.
    """
    x = np.asarray(features, dtype=np.float64)
    scores = np.full(len(x), np.nan)
    ok = finite_rows(x)
    if ok.any():
        scores[ok] = np.clip(-estimator.score_samples(x[ok]), 0.0, 1.0)
    return scores
