"""The alerts services and the admin record their actions in the audit trail, inside the action's transaction."""

import pytest
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.urls import reverse

from apps.accounts.models import Role
from apps.alerts import services
from apps.alerts.models import AlertRule, AlertStatus, Disposition
from apps.audit.models import AuditAction, AuditEvent
from apps.audit.services import audit_verify
from tests.alerts.test_admin import rule_form
from tests.factories import AlertFactory, AlertRuleFactory, UserFactory

pytestmark = pytest.mark.django_db


ALERT_ACTIONS = [
    AuditAction.ALERT_ACKNOWLEDGED,
    AuditAction.ALERT_RESOLVED,
    AuditAction.RULE_CHANGED,
    AuditAction.LIMIT_INCREASE,
]


def actions() -> list[str]:
    """The alert, rule and limit actions recorded (users made by the fixtures are recorded too)."""
    return list(AuditEvent.objects.filter(action__in=ALERT_ACTIONS).order_by("seq").values_list("action", flat=True))


@pytest.fixture
def boss():
    return UserFactory(username="boss", role=Role.ADMIN)


@pytest.fixture
def admin_client(client, boss):
    client.force_login(boss)
    return client


def test_rules_edited_in_the_admin_are_audited(admin_client, boss):
    admin_client.post(reverse("admin:alerts_alertrule_add"), rule_form())
    rule = AlertRule.objects.get(name="Desk VaR")
    change = reverse("admin:alerts_alertrule_change", args=[rule.pk])
    admin_client.post(change, rule_form(parameters='{"figure": "var", "soft": 0.04, "hard": 0.06}'))
    admin_client.post(reverse("admin:alerts_alertrule_delete", args=[rule.pk]), {"post": "yes"})
    assert not AlertRule.objects.filter(pk=rule.pk).exists()
    events = list(AuditEvent.objects.filter(action=AuditAction.RULE_CHANGED).order_by("seq"))
    assert [e.detail["change"] for e in events] == ["created", "updated", "deleted"]
    assert all(e.actor == boss and e.object_id == str(rule.pk) for e in events)
    assert events[1].before == {
        "parameters": {"figure": "var", "basis": "fraction_of_gross", "soft": 0.04, "hard": 0.05}
    }
    assert events[1].after["parameters"]["hard"] == 0.06
    assert events[2].before["name"] == "Desk VaR" and events[2].after is None
    assert audit_verify().ok


def test_a_rule_is_deleted_only_by_a_role_that_may(analyst):
    rule = AlertRuleFactory()
    with pytest.raises(PermissionDenied):
        services.alert_rule_delete(rule=rule, user=analyst)
    assert AlertRule.objects.filter(pk=rule.pk).exists() and not actions()


def test_a_rolled_back_action_leaves_no_event(analyst):
    alert = AlertFactory()
    with pytest.raises(RuntimeError), transaction.atomic():
        services.alert_acknowledge(alert=alert, user=analyst)
        raise RuntimeError("the caller's transaction fails")
    assert not actions()


def test_bulk_acknowledge_records_one_event_per_alert_acknowledged(analyst):
    first, second = AlertFactory(), AlertFactory()
    done = AlertFactory(
        status=AlertStatus.RESOLVED, resolved_at=first.first_seen, disposition=Disposition.TRUE_POSITIVE
    )
    services.alert_acknowledge_many(alert_ids=[first.pk, second.pk, done.pk], user=analyst)
    assert actions() == [AuditAction.ALERT_ACKNOWLEDGED] * 2


def test_an_automatic_resolution_is_not_a_person_s_action_and_is_not_recorded():
    alert = AlertFactory()
    services.alert_auto_resolve(rule=alert.rule, subject_key=alert.subject_key)
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED and not actions()
