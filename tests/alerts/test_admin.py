"""The alerts admin: rules edited with validated parameters, alerts and increases worked through the services."""

import datetime as dt

import pytest
from django.urls import reverse

from apps.accounts.models import Role
from apps.alerts.models import Alert, AlertRule, AlertStatus, LimitIncreaseStatus
from tests.factories import AlertFactory, AlertRuleFactory, LimitIncreaseFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def boss():
    return UserFactory(username="boss", role=Role.ADMIN)


@pytest.fixture
def admin_client(client, boss):
    client.force_login(boss)
    return client


def rule_form(**overrides) -> dict:
    form = {
        "name": "Desk VaR",
        "description": "",
        "kind": "risk_limit",
        "enabled": "on",
        "scope": "all",
        "scope_asset_class": "",
        "parameters": '{"figure": "var", "soft": 0.04, "hard": 0.05}',
        "severity": "HIGH",
        "cooldown": "00:15:00",
        "auto_resolve": "on",
    }
    return {**form, **overrides}


def test_a_rule_is_created_with_its_parameters_validated_and_its_author(admin_client, boss):
    response = admin_client.post(reverse("admin:alerts_alertrule_add"), rule_form())
    assert response.status_code == 302, response.content[:3000]
    rule = AlertRule.objects.get(name="Desk VaR")
    assert rule.parameters == {"figure": "var", "basis": "fraction_of_gross", "soft": 0.04, "hard": 0.05}
    assert rule.created_by == boss and rule.updated_by == boss


def test_bad_parameters_are_shown_on_the_form_naming_the_parameter(admin_client):
    response = admin_client.post(
        reverse("admin:alerts_alertrule_add"), rule_form(parameters='{"figure": "var", "hard": -1}')
    )
    assert response.status_code == 200
    assert b"hard: must be greater than 0." in response.content
    assert not AlertRule.objects.filter(name="Desk VaR").exists()


def test_the_rule_list_shows_precision(admin_client):
    rule = AlertRuleFactory(name="Noisy")
    AlertFactory(
        rule=rule, status=AlertStatus.RESOLVED, resolved_at=dt.datetime.now(dt.UTC), disposition="FALSE_POSITIVE"
    )
    response = admin_client.get(reverse("admin:alerts_alertrule_changelist"))
    assert b"0% of 1" in response.content


def test_the_dry_run_action_reports_per_rule(admin_client):
    rule = AlertRuleFactory(name="Replay me")
    response = admin_client.post(
        reverse("admin:alerts_alertrule_changelist"),
        {"action": "dry_run_last_30_days", "_selected_action": [rule.pk]},
        follow=True,
    )
    assert b"Replay me: 0 alert(s) over 0 evaluation(s)" in response.content


def test_alerts_are_read_only_and_worked_through_the_actions(admin_client, boss):
    alert = AlertFactory()
    change = reverse("admin:alerts_alert_change", args=[alert.pk])
    assert admin_client.post(change, {"status": "RESOLVED"}).status_code == 403
    changelist = reverse("admin:alerts_alert_changelist")
    admin_client.post(changelist, {"action": "acknowledge", "_selected_action": [alert.pk]})
    alert.refresh_from_db()
    assert (alert.status, alert.acknowledged_by) == (AlertStatus.ACKNOWLEDGED, boss)
    admin_client.post(changelist, {"action": "resolve_false_positive", "_selected_action": [alert.pk]})
    alert.refresh_from_db()
    assert (alert.status, alert.disposition) == (AlertStatus.RESOLVED, "FALSE_POSITIVE")
    assert alert.resolution_note == "Resolved in the admin by boss."


def test_an_admin_cannot_approve_their_own_increase_in_the_admin_either(admin_client, boss):
    own = LimitIncreaseFactory(requested_by=boss)
    theirs = LimitIncreaseFactory()
    response = admin_client.post(
        reverse("admin:alerts_limitincrease_changelist"),
        {"action": "approve", "_selected_action": [own.pk, theirs.pk]},
        follow=True,
    )
    own.refresh_from_db()
    theirs.refresh_from_db()
    assert (own.status, theirs.status) == (LimitIncreaseStatus.REQUESTED, LimitIncreaseStatus.APPROVED)
    assert b"Four eyes" in response.content
    assert Alert.objects.count() == 0


def test_an_admin_cannot_delete_an_alert_one_at_a_time_or_in_bulk(admin_client):
    alert = AlertFactory()
    changelist = reverse("admin:alerts_alert_changelist")
    actions = [name for name, _ in admin_client.get(changelist).context["action_form"].fields["action"].choices if name]
    assert "acknowledge" in actions and "delete_selected" not in actions
    bulk = {"action": "delete_selected", "_selected_action": [alert.pk], "post": "yes"}
    assert admin_client.post(changelist, bulk).status_code in (200, 302)
    assert admin_client.get(reverse("admin:alerts_alert_delete", args=[alert.pk])).status_code == 403
    assert Alert.objects.filter(pk=alert.pk).exists()
