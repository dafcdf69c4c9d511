"""The default surveillance thresholds: what a new install's rules hold, and what bench.surveillance measures."""

import importlib

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from apps.alerts.models import AlertRule, RuleKind
from apps.alerts.parameters import SCHEMAS
from bench import surveillance


def test_the_bench_measures_the_default_thresholds():
    assert surveillance.Z_DEFAULT == SCHEMAS[RuleKind.TRADE_ZSCORE]["threshold"].default == 8
    assert surveillance.ANOMALY_DEFAULT == SCHEMAS[RuleKind.TRADE_ANOMALY]["threshold"].default == 0.64


@pytest.mark.django_db
def test_an_install_starts_with_the_tuned_thresholds(default_rules):
    rules = {rule.kind: rule.parameters for rule in default_rules}
    assert rules[RuleKind.TRADE_ZSCORE]["threshold"] == 8
    assert rules[RuleKind.TRADE_ANOMALY]["threshold"] == 0.64


@pytest.mark.django_db
def test_the_migration_leaves_a_threshold_a_user_changed_alone(default_rules):
    migration = importlib.import_module("apps.alerts.migrations.0006_surveillance_thresholds")
    state = MigrationExecutor(connection).loader.project_state(("alerts", "0006_surveillance_thresholds"))
    zscore = AlertRule.objects.get(kind=RuleKind.TRADE_ZSCORE)
    anomaly = AlertRule.objects.get(kind=RuleKind.TRADE_ANOMALY)
    AlertRule.objects.filter(pk=zscore.pk).update(parameters={**zscore.parameters, "threshold": 5})
    AlertRule.objects.filter(pk=anomaly.pk).update(parameters={**anomaly.parameters, "threshold": 0.65})
    migration.forwards(state.apps, None)
    zscore.refresh_from_db()
    anomaly.refresh_from_db()
    assert zscore.parameters["threshold"] == 5  # the user's
    assert anomaly.parameters["threshold"] == 0.64  # the old default, tuned
    migration.backwards(state.apps, None)
    anomaly.refresh_from_db()
    assert anomaly.parameters["threshold"] == 0.65
