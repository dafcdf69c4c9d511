"""Notification delivery: channel choice by severity, one attempt row per try, retries with backoff, test sends.

Tasks run inline here (settings_test: Q_CLUSTER sync=True). Retries are django-q2 ONCE schedules: a test makes
one due and runs the worker's scheduler, as the cluster does about once a minute. Webhooks go to a local HTTP
server in a thread that answers with the statuses a test scripts; e-mail goes to Django's locmem outbox.
"""

import datetime as dt
import json
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.models import Schedule
from django_q.scheduler import scheduler
from rest_framework.test import APIClient

from apps.accounts.models import Role
from apps.alerts import notifications
from apps.alerts.models import Alert, AlertSeverity, NotificationAttempt, NotificationChannel
from apps.stream.models import StreamEvent
from tests.factories import AlertFactory, AlertRuleFactory, NotificationChannelFactory, UserFactory

pytestmark = pytest.mark.django_db

Status = NotificationAttempt.Status
Kind = NotificationChannel.Kind
NO_ROLE = "no-role"
WHO = [None, NO_ROLE, Role.VIEWER, Role.ANALYST, Role.ADMIN]


# ------------------------------------------------------------------------------ a local webhook receiver


class Receiver:
    """What the local webhook server was sent, and the statuses it answers with (the last one repeats)."""

    def __init__(self):
        self.statuses: list[int] = [200]
        self.bodies: list[dict] = []
        self.lock = threading.Lock()
        self.url = ""

    def next_status(self) -> int:
        with self.lock:
            return self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]


@pytest.fixture
def receiver():
    """Start an HTTP server on a free local port that records JSON bodies; stop it after the test."""
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            with state.lock:
                state.bodies.append(json.loads(body))
            status = state.next_status()
            answer = b"ok" if status < 400 else b"upstream unavailable"
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def closed_port_url():
    """Return a local URL nothing listens on (a channel that is down)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


class BrokenEmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages):
        raise ConnectionRefusedError("SMTP server down")


# ------------------------------------------------------------------------------ helpers


def rule_with(*channels, **kwargs):
    rule = AlertRuleFactory(**kwargs)
    rule.channels.set(channels)
    return rule


def webhook(url: str, **kwargs) -> NotificationChannel:
    return NotificationChannelFactory(kind=Kind.WEBHOOK, target=url, **kwargs)


def email(target: str = "desk@fund.example, cro@fund.example", **kwargs) -> NotificationChannel:
    return NotificationChannelFactory(kind=Kind.EMAIL, target=target, **kwargs)


def in_app(**kwargs) -> NotificationChannel:
    return NotificationChannelFactory(kind=Kind.IN_APP, target="", **kwargs)


def raise_and_commit(django_capture_on_commit_callbacks, rule, portfolio, *, severity=AlertSeverity.HIGH) -> Alert:
    """Create an alert and call the lifecycle hook in one transaction, then commit (running the on-commit work)."""
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        alert = AlertFactory(
            rule=rule, portfolio=portfolio, severity=severity, title="VaR above hard limit: ALPHA", message="VaR 6%"
        )
        notifications.on_alert_event(alert, notifications.RAISED)
    return alert


def attempts(channel=None) -> list[tuple[int, str]]:
    rows = NotificationAttempt.objects.order_by("channel_id", "attempt")
    if channel is not None:
        rows = rows.filter(channel=channel)
    return list(rows.values_list("attempt", "status"))


def run_due_retries(django_capture_on_commit_callbacks) -> None:
    """Make every retry schedule due and run the worker's scheduler once, as the cluster does."""
    Schedule.objects.filter(func=notifications.DELIVER_TASK).update(next_run=timezone.now() - dt.timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        scheduler(broker=get_broker())


@pytest.fixture
def queued(monkeypatch):
    """Record async_task calls instead of running them; return the list of (args, kwargs)."""
    calls = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda *args, **kwargs: calls.append((args, kwargs)))
    return calls


# ------------------------------------------------------------------------------ which channels


def test_only_enabled_channels_whose_minimum_the_severity_reaches_are_chosen(portfolio):
    low_app = in_app(name="app", min_severity=AlertSeverity.LOW)
    high_mail = email(name="mail", min_severity=AlertSeverity.HIGH)
    critical_hook = webhook("https://hooks.example/x", name="hook", min_severity=AlertSeverity.CRITICAL)
    disabled = in_app(name="off", min_severity=AlertSeverity.INFO, enabled=False)
    in_app(name="not on the rule", min_severity=AlertSeverity.INFO)
    rule = rule_with(low_app, high_mail, critical_hook, disabled)

    def chosen(severity):
        return [c.name for c in notifications.alert_channels(AlertFactory(rule=rule, severity=severity))]

    assert chosen(AlertSeverity.INFO) == []
    assert chosen(AlertSeverity.LOW) == ["app"]
    assert chosen(AlertSeverity.MEDIUM) == ["app"]
    assert chosen(AlertSeverity.HIGH) == ["app", "mail"]
    assert chosen(AlertSeverity.CRITICAL) == ["app", "mail", "hook"]


def test_a_channel_below_its_minimum_severity_gets_no_attempt(django_capture_on_commit_callbacks, portfolio):
    quiet = email(min_severity=AlertSeverity.CRITICAL)
    loud = email(target="ops@fund.example", min_severity=AlertSeverity.MEDIUM)
    raise_and_commit(django_capture_on_commit_callbacks, rule_with(quiet, loud), portfolio)
    assert attempts(quiet) == []
    assert attempts(loud) == [(1, Status.SENT)]
    assert [m.to for m in mail.outbox] == [["ops@fund.example"]]


# ------------------------------------------------------------------------------ queueing


def test_the_hook_queues_the_notify_task_only_after_the_commit(django_capture_on_commit_callbacks, queued, portfolio):
    rule = rule_with(in_app())
    with django_capture_on_commit_callbacks(execute=False) as callbacks, transaction.atomic():
        alert = AlertFactory(rule=rule, portfolio=portfolio)
        notifications.on_alert_event(alert, notifications.RAISED)
    assert queued == []  # raising the alert sent and queued nothing by itself
    for callback in callbacks:
        callback()
    assert [args for args, _ in queued] == [(notifications.NOTIFY_TASK, alert.pk, "raised")]


def test_a_rolled_back_alert_notifies_nobody(django_capture_on_commit_callbacks, queued, portfolio):
    rule = rule_with(in_app())
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        alert = AlertFactory(rule=rule, portfolio=portfolio)
        notifications.on_alert_event(alert, notifications.RAISED)
        raise RuntimeError("evaluation failed")
    assert callbacks == [] and queued == []


def test_a_rule_without_enabled_channels_queues_nothing(django_capture_on_commit_callbacks, queued, portfolio):
    raise_and_commit(django_capture_on_commit_callbacks, rule_with(in_app(enabled=False)), portfolio)
    raise_and_commit(django_capture_on_commit_callbacks, AlertRuleFactory(), portfolio)
    assert queued == []


def test_a_failure_to_queue_is_logged_not_raised(django_capture_on_commit_callbacks, monkeypatch, portfolio, caplog):
    def broken(*args, **kwargs):
        raise ConnectionError("database gone")

    monkeypatch.setattr("django_q.tasks.async_task", broken)
    alert = raise_and_commit(django_capture_on_commit_callbacks, rule_with(in_app()), portfolio)
    assert Alert.objects.filter(pk=alert.pk).exists()
    assert "Could not queue the notifications" in caplog.text


def test_only_raised_and_escalated_are_notified(portfolio):
    with pytest.raises(ValueError, match="Unknown notification event 'resolved'"):
        notifications.on_alert_event(AlertFactory(portfolio=portfolio), "resolved")


def test_notify_writes_one_pending_attempt_and_queues_one_delivery_per_channel(queued, portfolio):
    first, second = in_app(), email()
    alert = AlertFactory(rule=rule_with(first, second), portfolio=portfolio)
    made = notifications.alert_notify(alert_id=alert.pk, event=notifications.RAISED)
    assert [(a.channel_id, a.attempt, a.status) for a in made] == [
        (first.pk, 1, Status.PENDING),
        (second.pk, 1, Status.PENDING),
    ]
    assert [args for args, _ in queued] == [(notifications.DELIVER_TASK, a.pk, "raised") for a in made]
    assert {kwargs["group"] for _, kwargs in queued} == {notifications.TASK_GROUP}


def test_notify_of_a_deleted_alert_does_nothing(queued):
    assert notifications.alert_notify(alert_id=987654, event=notifications.RAISED) == []
    assert queued == []


# ------------------------------------------------------------------------------ e-mail, webhook, in-app


def test_email_goes_through_the_mail_backend_to_every_address(django_capture_on_commit_callbacks, portfolio):
    channel = email()
    alert = raise_and_commit(django_capture_on_commit_callbacks, rule_with(channel, name="VaR limit"), portfolio)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["desk@fund.example", "cro@fund.example"]
    assert message.subject == "[RiskRadar] New HIGH alert: VaR above hard limit: ALPHA"
    assert "VaR 6%" in message.body and "Rule: VaR limit" in message.body and "Subject: portfolio ALPHA" in message.body
    assert f"/alerts/{alert.pk}/" in message.body  # the alert's page (the admin's before the pages existed)
    attempt = NotificationAttempt.objects.get()
    assert (attempt.alert_id, attempt.attempt, attempt.status) == (alert.pk, 1, Status.SENT)
    assert attempt.response == "Sent to 2 recipient(s)."


def test_a_webhook_gets_a_slack_compatible_json_body(django_capture_on_commit_callbacks, receiver, portfolio):
    alert = raise_and_commit(django_capture_on_commit_callbacks, rule_with(webhook(receiver.url)), portfolio)
    (body,) = receiver.bodies
    assert body["text"].startswith("[RiskRadar] New HIGH alert: VaR above hard limit: ALPHA\n")
    assert [block["type"] for block in body["blocks"]] == ["section", "section", "context"]
    assert body["riskradar"]["id"] == alert.pk
    assert body["riskradar"]["portfolio_code"] == "ALPHA"
    assert body["riskradar"]["notification"] == "raised"
    assert NotificationAttempt.objects.get().response == "HTTP 200: ok"


def test_webhook_mrkdwn_escapes_what_slack_reserves():
    body = notifications.webhook_body(notifications.Notification(subject="A <b> & c", text="x > y", severity="LOW"))
    assert body["blocks"][0]["text"]["text"] == "*A &lt;b&gt; &amp; c*"
    assert body["blocks"][1]["text"]["text"] == "x &gt; y"
    assert body["text"] == "A <b> & c\nx > y"


def test_in_app_publishes_an_alert_event_that_pages_show_as_a_toast(django_capture_on_commit_callbacks, portfolio):
    alert = raise_and_commit(django_capture_on_commit_callbacks, rule_with(in_app()), portfolio)
    event = StreamEvent.objects.get(type="alert", data__action="notified")
    assert event.data["id"] == alert.pk and event.data["severity"] == "HIGH"
    assert event.data["portfolio_code"] == "ALPHA" and event.data["notification"] == "raised"
    assert NotificationAttempt.objects.get().status == Status.SENT

    html = render_to_string("stream/_alert.html", {"event": event.data, "seq": event.seq, "user": None})
    assert set(re.findall(r'id="([\w-]+)" hx-swap-oob=', html)) == {"toast-container", "stream-seq"}
    assert f'data-rr-toast="{event.seq}"' in html and "New alert" in html and "VaR above hard limit" in html
    assert "<script" not in html and " style=" not in html and "onclick" not in html


def test_an_ordinary_alert_event_still_goes_to_the_feed_not_a_toast():
    html = render_to_string(
        "stream/_alert.html", {"event": {"id": 3, "action": "raised", "severity": "LOW"}, "seq": 1, "user": None}
    )
    assert 'id="alert-feed" hx-swap-oob="afterbegin"' in html and "toast" not in html


def test_every_signed_in_page_has_the_toast_container(client_as):
    page = client_as(Role.VIEWER).get(reverse("portfolios:list"))
    assert page.status_code == 200
    assert 'id="toast-container"' in page.content.decode()


def test_a_title_with_line_breaks_makes_a_one_line_subject(portfolio):
    alert = AlertFactory(portfolio=portfolio, severity=AlertSeverity.LOW, title="VaR\r\nabove   limit")
    assert notifications.notification_of_alert(alert, None).subject == "[RiskRadar] LOW alert: VaR above limit"


def test_an_escalation_says_so(django_capture_on_commit_callbacks, portfolio):
    channel = email(min_severity=AlertSeverity.CRITICAL)
    alert = AlertFactory(rule=rule_with(channel), portfolio=portfolio, severity=AlertSeverity.CRITICAL, title="T")
    with django_capture_on_commit_callbacks(execute=True):
        notifications.on_alert_event(alert, notifications.ESCALATED)
    assert mail.outbox[0].subject == "[RiskRadar] Alert escalated to CRITICAL: T"


# ------------------------------------------------------------------------------ retries


def test_a_webhook_that_fails_then_succeeds_is_retried_with_one_attempt_row_per_try(
    django_capture_on_commit_callbacks, receiver, portfolio, settings
):
    settings.NOTIFY_RETRY_SECONDS = 60
    receiver.statuses = [503, 200]
    channel = webhook(receiver.url)
    alert = raise_and_commit(django_capture_on_commit_callbacks, rule_with(channel), portfolio)

    first, second = NotificationAttempt.objects.filter(channel=channel).order_by("attempt")
    assert (first.attempt, first.status, first.response) == (1, Status.FAILED, "HTTP 503: upstream unavailable")
    assert (second.attempt, second.status) == (2, Status.PENDING)
    retry = Schedule.objects.get(func=notifications.DELIVER_TASK)
    assert retry.schedule_type == Schedule.ONCE and retry.repeats == -1
    assert retry.next_run == second.at == first.at + dt.timedelta(seconds=60)
    assert len(receiver.bodies) == 1

    run_due_retries(django_capture_on_commit_callbacks)

    assert attempts(channel) == [(1, Status.FAILED), (2, Status.SENT)]
    assert NotificationAttempt.objects.get(attempt=2).response == "HTTP 200: ok"
    assert len(receiver.bodies) == 2 and receiver.bodies[0] == receiver.bodies[1]
    assert receiver.bodies[1]["riskradar"]["id"] == alert.pk
    assert not Schedule.objects.filter(func=notifications.DELIVER_TASK).exists()  # a ONCE schedule is used up


def test_a_channel_that_keeps_failing_gives_up_after_the_last_attempt(
    django_capture_on_commit_callbacks, receiver, portfolio, settings
):
    settings.NOTIFY_MAX_ATTEMPTS = 3
    receiver.statuses = [500]
    channel = webhook(receiver.url)
    raise_and_commit(django_capture_on_commit_callbacks, rule_with(channel), portfolio)
    for _ in range(5):
        run_due_retries(django_capture_on_commit_callbacks)
    assert attempts(channel) == [(1, Status.FAILED), (2, Status.FAILED), (3, Status.GAVE_UP)]
    assert len(receiver.bodies) == 3
    assert not Schedule.objects.filter(func=notifications.DELIVER_TASK).exists()


def test_the_delay_before_each_retry_doubles_up_to_a_cap(settings):
    settings.NOTIFY_RETRY_SECONDS = 60
    assert [notifications.retry_delay(n).total_seconds() for n in (1, 2, 3, 4)] == [60, 120, 240, 480]
    assert notifications.retry_delay(20) == notifications.RETRY_CAP


@pytest.mark.parametrize("status", [400, 404, 410])
def test_a_refusal_a_retry_cannot_fix_gives_up_at_once(django_capture_on_commit_callbacks, receiver, portfolio, status):
    receiver.statuses = [status]
    channel = webhook(receiver.url)
    raise_and_commit(django_capture_on_commit_callbacks, rule_with(channel), portfolio)
    assert attempts(channel) == [(1, Status.GAVE_UP)]
    assert NotificationAttempt.objects.get().response.startswith(f"HTTP {status}: ")
    assert not Schedule.objects.filter(func=notifications.DELIVER_TASK).exists()


def test_too_many_requests_is_retried(django_capture_on_commit_callbacks, receiver, portfolio):
    receiver.statuses = [429, 200]
    channel = webhook(receiver.url)
    raise_and_commit(django_capture_on_commit_callbacks, rule_with(channel), portfolio)
    run_due_retries(django_capture_on_commit_callbacks)
    assert attempts(channel) == [(1, Status.FAILED), (2, Status.SENT)]


def test_a_webhook_that_redirects_gives_up_and_names_the_target(
    django_capture_on_commit_callbacks, receiver, portfolio
):
    receiver.statuses = [302]
    channel = webhook(receiver.url)
    raise_and_commit(django_capture_on_commit_callbacks, rule_with(channel), portfolio)
    attempt = NotificationAttempt.objects.get()
    assert attempt.status == Status.GAVE_UP and "redirects" in attempt.response


def test_a_long_error_is_truncated(portfolio, monkeypatch):
    def noisy(channel, notification):
        raise RuntimeError("x" * 10_000)

    monkeypatch.setitem(notifications.SENDERS, Kind.IN_APP, noisy)
    outcome = notifications.channel_send(in_app(), notifications.Notification("s", "t", "LOW"))
    assert not outcome.ok and len(outcome.response) == notifications.RESPONSE_MAX


# ------------------------------------------------------------------------------ a channel that is down


def test_a_channel_that_is_down_neither_blocks_the_others_nor_loses_the_alert(
    django_capture_on_commit_callbacks, closed_port_url, receiver, portfolio, settings
):
    down = webhook(closed_port_url, name="down")
    up = webhook(receiver.url, name="up")
    mailbox, app = email(name="mail"), in_app(name="app")
    alert = raise_and_commit(django_capture_on_commit_callbacks, rule_with(down, up, mailbox, app), portfolio)

    assert Alert.objects.filter(pk=alert.pk).exists()
    assert attempts(down) == [(1, Status.FAILED), (2, Status.PENDING)]
    assert NotificationAttempt.objects.get(channel=down, attempt=1).response.startswith("Not reachable")
    assert attempts(up) == attempts(mailbox) == attempts(app) == [(1, Status.SENT)]
    assert len(receiver.bodies) == 1 and len(mail.outbox) == 1
    assert StreamEvent.objects.filter(data__action="notified").count() == 1


def test_a_mail_server_that_is_down_is_retried_and_the_others_still_get_theirs(
    django_capture_on_commit_callbacks, receiver, portfolio, settings
):
    settings.EMAIL_BACKEND = f"{__name__}.BrokenEmailBackend"
    mailbox, hook = email(), webhook(receiver.url)
    raise_and_commit(django_capture_on_commit_callbacks, rule_with(mailbox, hook), portfolio)
    assert attempts(mailbox) == [(1, Status.FAILED), (2, Status.PENDING)]
    assert "SMTP server down" in NotificationAttempt.objects.get(channel=mailbox, attempt=1).response
    assert attempts(hook) == [(1, Status.SENT)]

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    run_due_retries(django_capture_on_commit_callbacks)
    assert attempts(mailbox) == [(1, Status.FAILED), (2, Status.SENT)]
    assert len(mail.outbox) == 1


# ------------------------------------------------------------------------------ duplicates and lost work


def test_an_attempt_is_sent_once_when_its_task_runs_twice(queued, receiver, portfolio):
    alert = AlertFactory(rule=rule_with(webhook(receiver.url)), portfolio=portfolio)
    (attempt,) = notifications.alert_notify(alert_id=alert.pk, event=notifications.RAISED)
    assert notifications.attempt_deliver(attempt_id=attempt.pk, event="raised") == Status.SENT
    assert notifications.attempt_deliver(attempt_id=attempt.pk, event="raised") == ""
    assert len(receiver.bodies) == 1


def test_a_claim_held_by_a_running_delivery_is_respected_and_a_stale_one_taken_over(queued, receiver, portfolio):
    alert = AlertFactory(rule=rule_with(webhook(receiver.url)), portfolio=portfolio)
    (attempt,) = notifications.alert_notify(alert_id=alert.pk, event=notifications.RAISED)
    NotificationAttempt.objects.filter(pk=attempt.pk).update(response=notifications.SENDING, at=timezone.now())
    assert notifications.attempt_deliver(attempt_id=attempt.pk) == ""
    killed_run = timezone.now() - notifications.claim_lease() - dt.timedelta(seconds=1)
    NotificationAttempt.objects.filter(pk=attempt.pk).update(at=killed_run)
    assert notifications.attempt_deliver(attempt_id=attempt.pk) == Status.SENT
    assert len(receiver.bodies) == 1


def test_a_channel_disabled_before_delivery_is_not_sent_to(queued, receiver, portfolio):
    channel = webhook(receiver.url)
    alert = AlertFactory(rule=rule_with(channel), portfolio=portfolio)
    (attempt,) = notifications.alert_notify(alert_id=alert.pk, event=notifications.RAISED)
    NotificationChannel.objects.filter(pk=channel.pk).update(enabled=False)
    assert notifications.attempt_deliver(attempt_id=attempt.pk) == Status.GAVE_UP
    attempt.refresh_from_db()
    assert attempt.response == notifications.ERR_DISABLED and receiver.bodies == []


def test_attempts_left_pending_past_their_time_are_queued_again(queued, portfolio):
    alert = AlertFactory(rule=rule_with(in_app()), portfolio=portfolio)
    channel = alert.rule.channels.get()
    now = timezone.now()

    def pending(**fields):
        return NotificationAttempt.objects.create(alert=alert, channel=channel, status=Status.PENDING, **fields)

    lost = pending(at=now - notifications.OVERDUE_AFTER - dt.timedelta(minutes=1))
    killed = pending(at=now - notifications.claim_lease() - dt.timedelta(minutes=1), response=notifications.SENDING)
    pending(at=now - dt.timedelta(minutes=1))  # due, its task is waiting for a worker
    pending(at=now - dt.timedelta(minutes=1), response=notifications.SENDING)  # being sent
    pending(at=now + dt.timedelta(minutes=5))  # a retry not due yet
    NotificationAttempt.objects.create(
        alert=alert, channel=channel, status=Status.FAILED, at=now - dt.timedelta(days=1)
    )

    assert notifications.attempts_requeue_overdue(now=now) == 2
    assert sorted(args[1] for args, _ in queued) == sorted([lost.pk, killed.pk])


# ------------------------------------------------------------------------------ a test of a channel


def test_a_test_message_goes_out_and_is_recorded_in_the_channels_history(receiver, admin_user):
    channel = webhook(receiver.url, name="Slack #risk", enabled=False)
    result = notifications.channel_send_test(channel=channel, user=admin_user)
    assert (result.sent, result.status, result.response) == (True, Status.SENT, "HTTP 200: ok")
    (body,) = receiver.bodies
    assert body["text"].startswith("[RiskRadar] Test notification: Slack #risk\n")
    assert "sent by admin" in body["text"] and "once the channel is enabled" in body["text"]
    assert body["riskradar"]["action"] == "test"
    entry = LogEntry.objects.get(
        content_type=ContentType.objects.get_for_model(NotificationChannel),
        object_pk=str(channel.pk),
        additional_data__has_key="test_send",
    )
    assert entry.actor == admin_user and entry.additional_data["test_send"]["status"] == Status.SENT
    assert NotificationAttempt.objects.count() == 0


def test_a_failed_test_says_why(closed_port_url, admin_user):
    result = notifications.channel_send_test(channel=webhook(closed_port_url), user=admin_user)
    assert (result.sent, result.status) == (False, Status.FAILED)
    assert result.response.startswith("Not reachable")


def test_test_messages_by_email_and_in_app(admin_user, django_capture_on_commit_callbacks):
    assert notifications.channel_send_test(channel=email(target="cro@fund.example"), user=admin_user).sent
    assert mail.outbox[0].to == ["cro@fund.example"] and mail.outbox[0].subject.startswith("[RiskRadar] Test")
    with django_capture_on_commit_callbacks(execute=True):
        assert notifications.channel_send_test(channel=in_app(name="desk"), user=admin_user).sent
    event = StreamEvent.objects.get(type="alert")
    assert (event.data["action"], event.data["title"]) == ("test", "Test notification: desk")
    html = render_to_string("stream/_alert.html", {"event": event.data, "seq": event.seq, "user": admin_user})
    assert "Test notification" in html and 'id="toast-container"' in html


# ------------------------------------------------------------------------------ the API and the admin


def api_client_for(who) -> APIClient:
    client = APIClient()
    if who == NO_ROLE:
        client.force_authenticate(UserFactory(username="norole"))
    elif who is not None:
        client.force_authenticate(UserFactory(username=f"{who.lower()}-user", role=who))
    return client


@pytest.mark.parametrize("who", WHO, ids=str)
def test_only_admins_may_send_a_test_through_the_api(who):
    channel = email(target="cro@fund.example")
    response = api_client_for(who).post(f"/api/v1/alerts/channels/{channel.pk}/test")
    expected = {None: 401, NO_ROLE: 403, Role.VIEWER: 403, Role.ANALYST: 403, Role.ADMIN: 200}[who]
    assert response.status_code == expected, response.content
    assert len(mail.outbox) == (1 if who == Role.ADMIN else 0)


def test_the_api_answers_with_the_outcome_and_never_the_target(closed_port_url):
    client = api_client_for(Role.ADMIN)
    channel = webhook(closed_port_url, name="down")
    data = client.post(f"/api/v1/alerts/channels/{channel.pk}/test").json()
    assert {k: data[k] for k in ("channel", "name", "kind", "sent", "status")} == {
        "channel": channel.pk,
        "name": "down",
        "kind": "webhook",
        "sent": False,
        "status": "FAILED",
    }
    assert data["response"].startswith("Not reachable") and data["at"].endswith("Z")
    assert closed_port_url not in json.dumps(data)


def test_the_api_answers_404_for_an_unknown_channel_and_405_for_other_methods():
    client = api_client_for(Role.ADMIN)
    assert client.post("/api/v1/alerts/channels/987654/test").status_code == 404
    channel = in_app()
    assert client.get(f"/api/v1/alerts/channels/{channel.pk}/test").status_code == 405
    assert api_client_for(Role.VIEWER).get(f"/api/v1/alerts/channels/{channel.pk}/test").status_code == 405


def test_the_admin_action_sends_a_test_per_selected_channel(client_as):
    client = client_as(Role.ADMIN)
    first, second = email(target="a@fund.example"), email(target="b@fund.example")
    response = client.post(
        reverse("admin:alerts_notificationchannel_changelist"),
        {"action": "send_test", "_selected_action": [first.pk, second.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert sorted(m.to[0] for m in mail.outbox) == ["a@fund.example", "b@fund.example"]
    notes = [str(m) for m in response.context["messages"]]
    assert f"{first.name}: SENT: Sent to 1 recipient(s)." in notes


# ------------------------------------------------------------------------------ through the lifecycle


def test_alert_raise_notifies_on_a_new_alert_and_on_escalation_only(portfolio, django_capture_on_commit_callbacks):
    """The lifecycle itself queues delivery: once when an alert is raised, again only when a repeat escalates."""
    from apps.alerts.services import Subject, alert_raise

    rule = rule_with(email(min_severity=AlertSeverity.LOW))
    subject = Subject.of_portfolio(portfolio)

    def raise_(severity):
        with django_capture_on_commit_callbacks(execute=True):
            return alert_raise(rule=rule, subject=subject, severity=severity, title="VaR above limit")

    first = raise_(AlertSeverity.MEDIUM)
    assert first.action == "raised" and len(mail.outbox) == 1
    assert "VaR above limit" in mail.outbox[0].subject + mail.outbox[0].body
    assert raise_(AlertSeverity.MEDIUM).action == "updated" and len(mail.outbox) == 1  # a repeat: no new mail
    assert raise_(AlertSeverity.HIGH).escalated and len(mail.outbox) == 2
    assert NotificationAttempt.objects.filter(alert=first.alert, status=NotificationAttempt.Status.SENT).count() == 2
