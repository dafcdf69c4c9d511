import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.risk.engine.score import (
    DEFAULT_WEIGHTS,
    FEATURES,
    concentration_feature,
    drawdown_feature,
    gamma_feature,
    risk_score,
    var_utilisation_feature,
    volatility_regime_feature,
)

THRESHOLDS = {"low": 0.3, "medium": 0.5, "high": 0.8}


def test_feature_names_are_the_risk_config_keys():
    assert (
        set(FEATURES)
        == set(DEFAULT_WEIGHTS)
        == {
            "var_utilisation",
            "volatility_regime",
            "concentration",
            "drawdown",
            "gamma",
        }
    )


def test_score_is_the_normalised_weighted_mean_of_clipped_features():
    result = risk_score(
        features={"var_utilisation": 1.7, "drawdown": 0.5, "gamma": -0.2},
        weights={"var_utilisation": 2.0, "drawdown": 1.0, "gamma": 1.0},
        **THRESHOLDS,
    )
    assert result.score == pytest.approx((2 * 1.0 + 0.5 + 0.0) / 4)
    assert result.weights == pytest.approx({"var_utilisation": 0.5, "drawdown": 0.25, "gamma": 0.25})
    assert result.features == {"var_utilisation": 1.0, "drawdown": 0.5, "gamma": 0.0}
    assert result.severity == "MEDIUM"
    assert result.missing == ()


def test_missing_features_count_as_zero_and_are_reported():
    result = risk_score(features={"drawdown": 1.0}, weights={"drawdown": 1.0, "gamma": 1.0}, **THRESHOLDS)
    assert result.score == pytest.approx(0.5)
    assert result.features["gamma"] == 0.0
    assert result.missing == ("gamma",)


def test_empty_weights_fall_back_to_the_defaults():
    result = risk_score(features=dict.fromkeys(FEATURES, 1.0), weights={}, **THRESHOLDS)
    assert result.score == pytest.approx(1.0)
    assert sum(result.weights.values()) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("score", "severity"),
    [(0.0, "NONE"), (0.29, "NONE"), (0.3, "LOW"), (0.49, "LOW"), (0.5, "MEDIUM"), (0.8, "HIGH"), (1.0, "HIGH")],
)
def test_severity_thresholds_are_inclusive_lower_bounds(score, severity):
    assert risk_score(features={"drawdown": score}, weights={"drawdown": 1.0}, **THRESHOLDS).severity == severity


def test_bad_weights_or_thresholds_are_rejected():
    with pytest.raises(ValueError):
        risk_score(features={}, weights={"gamma": -1.0}, **THRESHOLDS)
    with pytest.raises(ValueError):
        risk_score(features={}, weights={"gamma": 1.0}, low=0.6, medium=0.5, high=0.8)


@settings(max_examples=100, deadline=None)
@given(
    features=st.dictionaries(st.sampled_from(FEATURES), st.floats(allow_nan=True, allow_infinity=True)),
    weights=st.dictionaries(st.sampled_from(FEATURES), st.floats(0, 100)),
)
def test_score_and_features_stay_in_the_unit_interval(features, weights):
    result = risk_score(features=features, weights=weights, **THRESHOLDS)
    assert 0.0 <= result.score <= 1.0
    assert all(0.0 <= v <= 1.0 for v in result.features.values())
    assert result.severity in ("NONE", "LOW", "MEDIUM", "HIGH")


def test_var_utilisation_feature():
    assert var_utilisation_feature(var=25_000, market_value=1_000_000, limit_fraction=0.05) == pytest.approx(0.5)
    assert var_utilisation_feature(var=80_000, market_value=-1_000_000, limit_fraction=0.05) == 1.0
    assert var_utilisation_feature(var=-5.0, market_value=100, limit_fraction=0.05) == 0.0
    assert var_utilisation_feature(var=5.0, market_value=0.0, limit_fraction=0.05) == 1.0


def test_volatility_regime_feature_is_linear_from_ratio_one_to_two():
    assert volatility_regime_feature(short_vol=0.1, long_vol=0.2) == 0.0
    assert volatility_regime_feature(short_vol=0.2, long_vol=0.2) == 0.0
    assert volatility_regime_feature(short_vol=0.3, long_vol=0.2) == pytest.approx(0.5)
    assert volatility_regime_feature(short_vol=0.5, long_vol=0.2) == 1.0
    assert volatility_regime_feature(short_vol=0.5, long_vol=0.0) == 0.0


def test_concentration_feature_maps_herfindahl_from_one_over_n_to_one():
    assert concentration_feature(np.full(10, 0.1)) == pytest.approx(0.0)
    assert concentration_feature(np.array([0.5, -0.5])) == pytest.approx(0.0)
    assert concentration_feature(np.array([1.0, 0.0, 0.0])) == pytest.approx(1.0)
    assert concentration_feature(np.array([3.0])) == 1.0
    assert concentration_feature(np.array([])) == 0.0
    h = 0.75**2 + 0.25**2
    assert concentration_feature(np.array([0.75, 0.25])) == pytest.approx((h - 0.5) / 0.5)


def test_drawdown_and_gamma_features():
    assert drawdown_feature(current_drawdown=0.1) == pytest.approx(0.5)
    assert drawdown_feature(current_drawdown=0.35) == 1.0
    assert drawdown_feature(current_drawdown=0.0) == 0.0
    assert gamma_feature(gamma_pnl_1pct=-5_000, market_value=1_000_000) == pytest.approx(0.5)
    assert gamma_feature(gamma_pnl_1pct=5_000, market_value=1_000_000) == 0.0
    assert gamma_feature(gamma_pnl_1pct=-50_000, market_value=1_000_000) == 1.0
