"""The alert lifecycle: raise with dedup and cooldown, acknowledge, resolve, auto-resolve; per role; published."""

import datetime as dt

import pytest
from auditlog.models import LogEntry
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from apps.accounts.models import Role
from apps.alerts import services
from apps.alerts.models import Alert, AlertSeverity, AlertStatus, Disposition
from apps.alerts.services import Subject, WorkflowError
from apps.stream.models import StreamEvent
from tests.factories import AlertRuleFactory, PortfolioFactory, UserFactory

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 6, 30, 6, 0, tzinfo=dt.UTC)


@pytest.fixture
def rule():
    return AlertRuleFactory(cooldown=dt.timedelta(minutes=10))


@pytest.fixture
def subject():
    return Subject.of_portfolio(PortfolioFactory(code="ALPHA"))


def raise_alert(rule, subject, *, at=T0, severity=AlertSeverity.HIGH, value=0.06):
    return services.alert_raise(
        rule=rule,
        subject=subject,
        severity=severity,
        title="VaR above hard limit: ALPHA",
        message="...",
        figures={"value": value, "limit": 0.05},
        now=at,
    )


def open_alert(rule, subject) -> Alert:
    return raise_alert(rule, subject).alert


# ------------------------------------------------------------------------------ raise, dedup, cooldown


def test_a_first_breach_raises_an_open_alert(rule, subject):
    outcome = raise_alert(rule, subject)
    assert outcome.action == services.RAISED
    alert = outcome.alert
    assert (alert.status, alert.count, alert.first_seen, alert.last_seen) == (AlertStatus.OPEN, 1, T0, T0)
    assert alert.subject_key == subject.key and alert.portfolio.code == "ALPHA"
    assert alert.figures == {"value": 0.06, "limit": 0.05}


def test_a_repeat_while_open_updates_the_alert_instead_of_raising_another(rule, subject):
    first = raise_alert(rule, subject).alert
    later = T0 + dt.timedelta(minutes=5)
    outcome = raise_alert(rule, subject, at=later, value=0.07)
    assert outcome.action == services.UPDATED and outcome.alert.pk == first.pk
    first.refresh_from_db()
    assert (first.count, first.first_seen, first.last_seen) == (2, T0, later)
    assert first.figures["value"] == 0.07
    assert Alert.objects.count() == 1


def test_a_repeat_while_acknowledged_updates_it_and_keeps_it_acknowledged(rule, subject, analyst):
    alert = open_alert(rule, subject)
    services.alert_acknowledge(alert=alert, user=analyst)
    outcome = raise_alert(rule, subject, at=T0 + dt.timedelta(minutes=1))
    assert outcome.action == services.UPDATED
    alert.refresh_from_db()
    assert (alert.status, alert.count) == (AlertStatus.ACKNOWLEDGED, 2)


def test_a_repeat_escalates_severity_but_never_lowers_it(rule, subject):
    raise_alert(rule, subject, severity=AlertSeverity.MEDIUM)
    outcome = raise_alert(rule, subject, severity=AlertSeverity.HIGH)
    assert outcome.escalated and outcome.alert.severity == AlertSeverity.HIGH
    outcome = raise_alert(rule, subject, severity=AlertSeverity.LOW)
    assert not outcome.escalated and outcome.alert.severity == AlertSeverity.HIGH


def test_other_subjects_and_other_rules_get_their_own_alerts(rule, subject):
    raise_alert(rule, subject)
    raise_alert(rule, Subject.of_portfolio(PortfolioFactory(code="BETA")))
    raise_alert(AlertRuleFactory(), subject)
    assert Alert.objects.count() == 3


def test_within_the_cooldown_after_resolve_a_breach_is_suppressed(rule, subject, analyst):
    alert = open_alert(rule, subject)
    services.alert_resolve(
        alert=alert,
        user=analyst,
        disposition=Disposition.TRUE_POSITIVE,
        note="Reduced.",
        now=T0 + dt.timedelta(minutes=1),
    )
    inside = raise_alert(rule, subject, at=T0 + dt.timedelta(minutes=10, seconds=59))
    assert inside.action == services.SUPPRESSED and inside.alert is None
    assert Alert.objects.count() == 1


def test_after_the_cooldown_a_breach_raises_a_new_alert(rule, subject, analyst):
    alert = open_alert(rule, subject)
    services.alert_resolve(
        alert=alert,
        user=analyst,
        disposition=Disposition.TRUE_POSITIVE,
        note="Reduced.",
        now=T0 + dt.timedelta(minutes=1),
    )
    # The cooldown runs for 10 minutes from the resolve: at exactly 10 minutes it has ended.
    after = raise_alert(rule, subject, at=T0 + dt.timedelta(minutes=11))
    assert after.action == services.RAISED and after.alert.pk != alert.pk
    assert Alert.objects.filter(status=AlertStatus.OPEN).count() == 1


def test_a_rule_without_cooldown_raises_again_at_once(subject, analyst):
    rule = AlertRuleFactory(cooldown=dt.timedelta(0))
    alert = open_alert(rule, subject)
    services.alert_resolve(alert=alert, user=analyst, disposition=Disposition.FALSE_POSITIVE, note="Noise.", now=T0)
    assert raise_alert(rule, subject, at=T0).action == services.RAISED


# ------------------------------------------------------------------------------ acknowledge and resolve per role


@pytest.mark.parametrize("role", [Role.ADMIN, Role.ANALYST])
def test_admins_and_analysts_acknowledge_then_resolve(rule, subject, role):
    user = UserFactory(role=role)
    alert = open_alert(rule, subject)
    alert = services.alert_acknowledge(alert=alert, user=user, now=T0)
    assert (alert.status, alert.acknowledged_by, alert.acknowledged_at) == (AlertStatus.ACKNOWLEDGED, user, T0)
    alert = services.alert_resolve(
        alert=alert, user=user, disposition=Disposition.TRUE_POSITIVE, note=" Hedged with futures. ", now=T0
    )
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED
    assert (alert.resolved_by, alert.resolved_at, alert.disposition) == (user, T0, Disposition.TRUE_POSITIVE)
    assert alert.resolution_note == "Hedged with futures." and not alert.auto_resolved


def test_an_open_alert_may_be_resolved_without_being_acknowledged(rule, subject, analyst):
    alert = services.alert_resolve(
        alert=open_alert(rule, subject), user=analyst, disposition=Disposition.FALSE_POSITIVE, note="Stale price."
    )
    assert alert.status == AlertStatus.RESOLVED and alert.acknowledged_at is None


def test_a_viewer_may_neither_acknowledge_nor_resolve(rule, subject, viewer):
    alert = open_alert(rule, subject)
    with pytest.raises(PermissionDenied, match="may not acknowledge"):
        services.alert_acknowledge(alert=alert, user=viewer)
    with pytest.raises(PermissionDenied, match="may not resolve"):
        services.alert_resolve(alert=alert, user=viewer, disposition=Disposition.TRUE_POSITIVE, note="x")
    alert.refresh_from_db()
    assert alert.status == AlertStatus.OPEN


def test_acknowledging_twice_is_refused_naming_the_status(rule, subject, analyst):
    alert = services.alert_acknowledge(alert=open_alert(rule, subject), user=analyst)
    with pytest.raises(WorkflowError) as exc:
        services.alert_acknowledge(alert=alert, user=analyst)
    assert exc.value.message_dict == {"status": [f"Alert #{alert.pk} is ACKNOWLEDGED; it cannot be acknowledged."]}


def test_a_resolved_alert_can_be_neither_acknowledged_nor_resolved_again(rule, subject, admin_user):
    alert = services.alert_resolve(
        alert=open_alert(rule, subject), user=admin_user, disposition=Disposition.TRUE_POSITIVE, note="Done."
    )
    with pytest.raises(WorkflowError, match="RESOLVED; it cannot be acknowledged"):
        services.alert_acknowledge(alert=alert, user=admin_user)
    with pytest.raises(WorkflowError, match="RESOLVED; it cannot be resolved"):
        services.alert_resolve(alert=alert, user=admin_user, disposition=Disposition.FALSE_POSITIVE, note="Again.")


def test_resolving_needs_a_disposition_and_a_note(rule, subject, analyst):
    alert = open_alert(rule, subject)
    with pytest.raises(WorkflowError) as exc:
        services.alert_resolve(alert=alert, user=analyst, disposition="MAYBE", note="  ")
    assert set(exc.value.message_dict) == {"disposition", "resolution_note"}
    alert.refresh_from_db()
    assert alert.status == AlertStatus.OPEN


def test_bulk_acknowledge_takes_the_open_alerts_and_skips_the_rest(rule, analyst):
    alerts = [open_alert(rule, Subject.of_portfolio(PortfolioFactory(code=f"P{i}"))) for i in range(3)]
    services.alert_resolve(alert=alerts[2], user=analyst, disposition=Disposition.TRUE_POSITIVE, note="Done.")
    done = services.alert_acknowledge_many(alert_ids=[a.pk for a in alerts], user=analyst)
    assert sorted(a.pk for a in done) == sorted(a.pk for a in alerts[:2])
    assert Alert.objects.filter(status=AlertStatus.ACKNOWLEDGED).count() == 2


# ------------------------------------------------------------------------------ auto-resolve


def test_auto_resolve_closes_the_active_alert_without_a_disposition(rule, subject):
    alert = open_alert(rule, subject)
    resolved = services.alert_auto_resolve(rule=rule, subject_key=subject.key, note="Back within limits.", now=T0)
    assert resolved.pk == alert.pk
    alert.refresh_from_db()
    assert (alert.status, alert.auto_resolved, alert.disposition, alert.resolved_by) == (
        AlertStatus.RESOLVED,
        True,
        "",
        None,
    )
    assert alert.resolution_note == "Back within limits."


def test_auto_resolve_does_nothing_for_a_rule_that_does_not_auto_resolve(subject):
    rule = AlertRuleFactory(auto_resolve=False)
    open_alert(rule, subject)
    assert services.alert_auto_resolve(rule=rule, subject_key=subject.key) is None
    assert Alert.objects.get().status == AlertStatus.OPEN


def test_auto_resolve_without_an_active_alert_is_a_no_op(rule, subject):
    assert services.alert_auto_resolve(rule=rule, subject_key=subject.key) is None


# ------------------------------------------------------------------------------ events and audit


def test_each_step_publishes_a_small_alert_event_after_commit(
    rule, subject, analyst, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        alert = open_alert(rule, subject)
        raise_alert(rule, subject)
        services.alert_acknowledge(alert=alert, user=analyst)
        services.alert_resolve(alert=alert, user=analyst, disposition=Disposition.TRUE_POSITIVE, note="Done.")
    events = list(StreamEvent.objects.filter(type="alert").order_by("seq"))
    assert [e.data["action"] for e in events] == ["raised", "updated", "acknowledged", "resolved"]
    data = events[0].data
    assert data["portfolio_code"] == "ALPHA" and data["id"] == alert.pk and data["severity"] == "HIGH"
    assert set(data) == {
        "id",
        "action",
        "rule_id",
        "kind",
        "severity",
        "status",
        "title",
        "count",
        "subject_key",
        "created_at",
        "first_seen",
        "last_seen",
        "portfolio_code",
    }
    assert [e.data["status"] for e in events] == ["OPEN", "OPEN", "ACKNOWLEDGED", "RESOLVED"]


def test_nothing_is_published_when_the_transaction_rolls_back(rule, subject, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        open_alert(rule, subject)
    # the event and the notification are registered for the commit, neither sent before it
    assert len(callbacks) == 2
    assert not StreamEvent.objects.exists()


def test_acknowledge_and_resolve_are_in_the_audit_log_with_the_user(rule, subject, analyst):
    alert = services.alert_acknowledge(alert=open_alert(rule, subject), user=analyst)
    services.alert_resolve(alert=alert, user=analyst, disposition=Disposition.FALSE_POSITIVE, note="Bad tick.")
    entries = LogEntry.objects.get_for_object(alert).filter(actor=analyst).order_by("timestamp")
    changed = [set(e.changes) for e in entries]
    assert {"status", "acknowledged_by", "acknowledged_at"} <= changed[0]
    assert {"status", "disposition", "resolution_note"} <= changed[1]


def test_repeats_of_a_condition_do_not_fill_the_audit_log(rule, subject):
    alert = open_alert(rule, subject)
    before = LogEntry.objects.get_for_object(alert).count()
    for minute in range(1, 4):
        raise_alert(rule, subject, at=T0 + dt.timedelta(minutes=minute))
    assert LogEntry.objects.get_for_object(alert).count() == before


def test_the_acknowledged_time_defaults_to_now(rule, subject, analyst):
    before = timezone.now()
    alert = services.alert_acknowledge(alert=open_alert(rule, subject), user=analyst)
    assert alert.acknowledged_at >= before
