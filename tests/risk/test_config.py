import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from apps.risk.models import RiskConfig

pytestmark = pytest.mark.django_db


def test_a_new_install_has_the_default_row():
    config = RiskConfig.get_solo()
    assert RiskConfig.objects.count() == 1
    assert config.confidence_levels == [0.95, 0.99]
    assert (config.score_low, config.score_medium, config.score_high) == (0.3, 0.5, 0.8)
    config.full_clean()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"confidence_levels": []}, "confidence_levels"),
        ({"confidence_levels": [0.95, 1.0]}, "confidence_levels"),
        ({"confidence_levels": [0.4]}, "confidence_levels"),
        ({"confidence_levels": [0.95, 0.95]}, "confidence_levels"),
        ({"confidence_levels": "0.95"}, "confidence_levels"),
        ({"confidence_levels": [True]}, "confidence_levels"),
        ({"score_low": 0.6}, "score_low"),
        ({"score_high": 1.5}, "score_low"),
        ({"ewma_lambda": 1.0}, "ewma_lambda"),
        ({"horizon_days": 0}, "horizon_days"),
        ({"mc_paths": 10}, "mc_paths"),
        ({"score_weights": {"var_utilisation": -1}}, "score_weights"),
        ({"score_weights": {"moon_phase": 1}}, "score_weights"),
        ({"score_weights": {}}, "score_weights"),
    ],
)
def test_invalid_settings_are_refused_naming_the_field(changes, field):
    config = RiskConfig.get_solo()
    for name, value in changes.items():
        setattr(config, name, value)
    with pytest.raises(ValidationError) as exc:
        config.full_clean()
    assert field in exc.value.message_dict


def test_the_database_refuses_unordered_thresholds():
    config = RiskConfig.get_solo()
    config.score_low = 0.9
    with pytest.raises(IntegrityError), transaction.atomic():
        config.save()


@pytest.mark.parametrize(
    ("score", "severity"),
    [(0.0, "NONE"), (0.29, "NONE"), (0.3, "LOW"), (0.5, "MEDIUM"), (0.79, "MEDIUM"), (0.8, "HIGH")],
)
def test_severity_follows_the_thresholds(score, severity):
    assert RiskConfig.get_solo().severity_for(score) == severity


@pytest.mark.parametrize(
    ("field", "value"),
    [("equity", -1.0), ("crypto", -2.0), ("vol_multiplier", 0.0), ("rates_bp", float("inf"))],
)
def test_stress_scenario_names_the_bad_field(field, value):
    from apps.risk.models import StressScenario

    scenario = StressScenario(name="Bad", **{field: value})
    with pytest.raises(ValidationError) as exc:
        scenario.full_clean()
    assert field in exc.value.message_dict
