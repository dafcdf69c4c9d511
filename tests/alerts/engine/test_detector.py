"""The detector engine: IsolationForest scores in [0, 1] as s(x) = -score_samples(x), deterministic with a seed."""

import numpy as np
import pytest

from apps.alerts.engine.detector import (
    DEFAULT_FEATURES,
    MIN_SAMPLES,
    DetectorParams,
    detector_fit,
    detector_scores,
    feature_columns,
)
from apps.alerts.engine.surveillance import FEATURES


def features(n: int, seed: int = 1, columns: int = len(DEFAULT_FEATURES)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(0, 1, (n, columns))


def test_scores_are_in_zero_to_one_and_the_outlier_scores_highest():
    x = features(1000)
    forest = detector_fit(x, params=DetectorParams(n_estimators=50, seed=3))
    probe = np.vstack([np.zeros(len(DEFAULT_FEATURES)), np.full(len(DEFAULT_FEATURES), 8.0)])
    scores = detector_scores(forest, probe)
    assert ((scores >= 0) & (scores <= 1)).all()
    assert scores[1] > 0.7 > 0.5 > scores[0]


def test_the_score_is_minus_score_samples():
    x = features(500)
    forest = detector_fit(x, params=DetectorParams(n_estimators=30))
    assert detector_scores(forest, x[:20]).tolist() == pytest.approx((-forest.score_samples(x[:20])).tolist())


def test_the_same_seed_gives_the_same_forest_and_another_seed_another():
    x = features(800)
    a = detector_scores(detector_fit(x, params=DetectorParams(seed=7, n_estimators=40)), x)
    b = detector_scores(detector_fit(x, params=DetectorParams(seed=7, n_estimators=40)), x)
    c = detector_scores(detector_fit(x, params=DetectorParams(seed=8, n_estimators=40)), x)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_rows_with_a_missing_feature_are_not_scored_nor_learnt_from():
    x = features(300)
    x[::3, 0] = np.nan
    forest = detector_fit(x, params=DetectorParams(n_estimators=20))
    assert forest.max_samples_ == 200  # the 200 finite rows
    scores = detector_scores(forest, x)
    assert np.isnan(scores[::3]).all() and np.isfinite(scores[1::3]).all()


def test_a_detector_looks_at_the_features_it_is_given_by_name():
    names = ("symbol_share", "trades_1m")
    assert feature_columns(names).tolist() == [FEATURES.index("symbol_share"), FEATURES.index("trades_1m")]
    forest = detector_fit(features(400, columns=2), params=DetectorParams(features=names, n_estimators=20))
    assert forest.n_features_in_ == 2
    assert np.isfinite(detector_scores(forest, features(5, columns=2))).all()
    with pytest.raises(ValueError, match="matrix of its features"):
        detector_fit(features(400, columns=3), params=DetectorParams(features=names))


def test_unknown_features_and_too_few_samples_are_refused():
    with pytest.raises(ValueError, match="Unknown detector feature"):
        feature_columns(["shoe_size"])
    with pytest.raises(ValueError, match=f"at least {MIN_SAMPLES}"):
        detector_fit(features(MIN_SAMPLES - 1))
