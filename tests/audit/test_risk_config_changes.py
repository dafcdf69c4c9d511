"""Every way of changing the risk settings (the API, the admin) records a "config_changed" event with the changed
settings before and after, who changed them, and from which address and browser."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from rest_framework.test import APIClient

from apps.accounts.models import Role
from apps.audit.models import AuditAction, AuditEvent
from apps.audit.services import audit_verify
from apps.risk import services
from apps.risk.models import RiskConfig
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ADMIN_FORM = {
    "confidence_levels": "[0.95, 0.99]",
    "horizon_days": 1,
    "lookback_days": 500,
    "mc_paths": 10000,
    "mc_distribution": "normal",
    "mc_t_dof": 5.0,
    "ewma_lambda": 0.94,
    "risk_free_rate": 0.065,
    "var_limit_fraction": 0.05,
    "score_low": 0.3,
    "score_medium": 0.5,
    "score_high": 0.8,
    "score_weights": (
        '{"var_utilisation": 0.35, "volatility_regime": 0.2, "concentration": 0.2, "drawdown": 0.15, "gamma": 0.1}'
    ),
}


def config_events() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=AuditAction.CONFIG_CHANGED).order_by("seq"))


@pytest.fixture
def boss():
    return UserFactory(username="boss", role=Role.ADMIN)


def test_an_api_change_records_the_changed_settings_actor_address_and_browser(boss):
    api = APIClient()
    api.force_authenticate(boss)
    response = api.put(
        "/api/v1/config",
        {"horizon_days": 10, "score_high": 0.9, "lookback_days": 500},  # lookback_days keeps its value
        format="json",
        REMOTE_ADDR="10.20.30.40",
        HTTP_USER_AGENT="risk-desk-script/1.0",
    )
    assert response.status_code == 200, response.content

    (event,) = config_events()
    assert (event.object_type, event.object_id) == ("risk.riskconfig", str(RiskConfig.get_solo().pk))
    assert event.before == {"horizon_days": 1, "score_high": 0.8}
    assert event.after == {"horizon_days": 10, "score_high": 0.9}
    assert event.detail == {"changed": ["horizon_days", "score_high"]}
    assert (event.actor_id, event.actor_name) == (boss.pk, "boss")
    assert (event.ip, event.user_agent) == ("10.20.30.40", "risk-desk-script/1.0")
    assert audit_verify().ok


def test_an_admin_form_change_is_recorded_with_the_settings_it_changed(client, boss):
    client.force_login(boss)
    form = {**ADMIN_FORM, "confidence_levels": "[0.95, 0.975, 0.99]", "mc_distribution": "t"}
    response = client.post(
        reverse("admin:risk_riskconfig_change"), form, REMOTE_ADDR="192.0.2.7", HTTP_USER_AGENT="Firefox/140"
    )
    assert response.status_code == 302, response.content[:2000]

    (event,) = config_events()
    assert event.before == {"confidence_levels": [0.95, 0.99], "mc_distribution": "normal"}
    assert event.after == {"confidence_levels": [0.95, 0.975, 0.99], "mc_distribution": "t"}
    assert (event.actor_name, event.ip, event.user_agent) == ("boss", "192.0.2.7", "Firefox/140")


def test_saving_the_settings_unchanged_or_refused_records_nothing(client, boss):
    client.force_login(boss)
    assert client.post(reverse("admin:risk_riskconfig_change"), ADMIN_FORM).status_code == 302
    weights = RiskConfig.get_solo().score_weights
    services.risk_config_update(data={"horizon_days": 1, "score_weights": weights}, user=boss)
    with pytest.raises(ValidationError, match="score_low"):
        services.risk_config_update(data={"score_low": 0.95}, user=boss)
    assert config_events() == []


def test_successive_changes_each_record_what_they_replaced(boss):
    services.risk_config_update(data={"mc_paths": 20000}, user=boss)
    services.risk_config_update(data={"mc_paths": 50000, "score_weights": {"var_utilisation": 1.0}}, user=boss)

    first, second = config_events()
    assert (first.before, first.after) == ({"mc_paths": 10000}, {"mc_paths": 20000})
    assert second.before["mc_paths"] == 20000 and second.after["mc_paths"] == 50000
    assert second.after["score_weights"] == {"var_utilisation": 1.0}
    assert second.before["score_weights"]["var_utilisation"] == 0.35
    assert second.seq > first.seq and audit_verify().ok
