"""Notification delivery: which channels hear of an alert, one queued delivery per channel, retries with backoff.

Flow:

1. The alert lifecycle calls `on_alert_event(alert, event)` when an alert is raised or escalated. Nothing is
   sent there: once the lifecycle's transaction commits, the task `apps.alerts.tasks.notify_alert(alert_id,
   event)` is queued (only when the rule has an enabled channel), so raising an alert never waits on a mail
   server or a webhook, and a rolled-back alert notifies nobody.
2. The task runs `alert_notify()`: the rule's enabled channels whose `min_severity` the alert reaches
   (`alert_channels()`) each get a PENDING NotificationAttempt and their own queued task
   `deliver_notification(attempt_id, event)`. With the ORM broker the attempts and their tasks commit in one
   transaction, so neither exists without the other, and both survive a restart of the worker.
3. `attempt_deliver()` claims the attempt, sends it (e-mail, webhook or in-app) and records the outcome on
   the same row: SENT, FAILED (another attempt follows) or GAVE_UP. Each channel is its own task, so a channel
   that is down delays only its own deliveries.

Retries: a failed attempt writes the next attempt (number + 1, PENDING, `at` = when it is due) and a
django-q2 Schedule of type ONCE whose `next_run` is that time, in the same transaction as the failure. The
worker's scheduler turns a due schedule into a queued task and deletes it in one transaction, so a retry
survives restarts and is neither lost nor queued twice. The delay doubles from NOTIFY_RETRY_SECONDS
(1, 2, 4, 8 minutes by default, at most RETRY_CAP) up to NOTIFY_MAX_ATTEMPTS attempts; a refusal that a retry
cannot fix (an HTTP 4xx other than 408/425/429, a redirect, a URL that is not http(s)) gives up at once.

Duplicates: an attempt is claimed with a conditional UPDATE before it is sent (status PENDING, response
SENDING, `at` the claim time), so two runs of the same task (a worker that died before acknowledging it)
send once; a claim older than the worker's task time limit is taken over, since its run was killed.
Delivery is therefore at least once: a worker killed between sending and recording sends again.
`attempts_requeue_overdue()` queues again any attempt left PENDING long past its time (a schedule deleted by
hand, a task dropped after the worker's own retries); it is safe to run at any time.

A test of a channel (`channel_send_test`) is sent at once, within the same time limits, and recorded in the
channel's change history (NotificationAttempt needs an alert).
"""

import datetime as dt
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.client import HTTPException

from auditlog.models import LogEntry
from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Q
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from apps.alerts.models import Alert, AlertSeverity, NotificationAttempt, NotificationChannel
from apps.stream.publish import jsonable, publish
from riskradar import metrics

logger = logging.getLogger(__name__)

NOTIFY_TASK = "apps.alerts.tasks.notify_alert"
NOTIFY_MANY_TASK = "apps.alerts.tasks.notify_alerts"
DELIVER_TASK = "apps.alerts.tasks.deliver_notification"
TASK_GROUP = "notifications"

RAISED, ESCALATED, TEST = "raised", "escalated", "test"
NOTIFIED_EVENTS = frozenset({RAISED, ESCALATED})
# The "action" of the stream's "alert" event that asks pages for a toast (templates/stream/_alert.html).
IN_APP_ACTION = "notified"
IN_APP_TEST_ACTION = "test"

Status = NotificationAttempt.Status
SENDING = "Sending..."
RESPONSE_MAX = 2000  # characters of response or error text kept on an attempt
READ_MAX = 4096  # bytes of a webhook's answer read
RETRY_CAP = dt.timedelta(hours=1)
# PENDING this long past its time: its task or schedule was lost (the worker's own retries are 6 minutes).
OVERDUE_AFTER = dt.timedelta(minutes=30)
# 4xx answers that say "try again later" rather than "this request is wrong".
RETRYABLE_HTTP = frozenset({408, 425, 429})
MAX_FIGURES = 12  # figures listed in a message
# Where a message links to: the alert's page when the app has one, else its admin page.
ALERT_URL_NAMES = ("alerts:detail", "admin:alerts_alert_change")

ERR_UNKNOWN_EVENT = "Unknown notification event '{event}'; expected one of: raised, escalated."
ERR_DISABLED = "The channel was disabled before this attempt; not sent."
ERR_NO_RECIPIENTS = "The channel lists no e-mail address."
ERR_SCHEME = "The webhook URL must start with http:// or https://."
ERR_REDIRECT = "HTTP {code}: the webhook URL redirects to {location}; configure the final URL."
ERR_UNKNOWN_KIND = "Unknown channel kind '{kind}'."


# ------------------------------------------------------------------------------ settings


def max_attempts() -> int:
    return max(1, int(getattr(settings, "NOTIFY_MAX_ATTEMPTS", 5)))


def retry_delay(attempt: int) -> dt.timedelta:
    """Return how long after failed attempt number `attempt` the next one is due: base x 2^(attempt-1), capped."""
    base = dt.timedelta(seconds=max(1, int(getattr(settings, "NOTIFY_RETRY_SECONDS", 60))))
    return min(base * 2 ** max(0, attempt - 1), RETRY_CAP)


def send_timeout() -> float:
    return float(getattr(settings, "NOTIFY_TIMEOUT_SECONDS", 10))


def claim_lease() -> dt.timedelta:
    """Return how old a claim must be to be taken over: longer than the worker's task time limit (Q_TIMEOUT)."""
    timeout = int(getattr(settings, "Q_CLUSTER", {}).get("timeout") or 300)
    return dt.timedelta(seconds=timeout + 60)


# ------------------------------------------------------------------------------ messages


@dataclass(frozen=True)
class Notification:
    """What a channel sends: a one-line subject, a plain-text body, and the stream's alert event data (plain JSON)."""

    subject: str
    text: str
    severity: str
    url: str = ""
    data: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """The result of one send: `ok`, the response or error text, and whether a retry could change it."""

    ok: bool
    response: str
    permanent: bool = False


def _absolute(path: str) -> str:
    return f"{str(getattr(settings, 'SITE_URL', '')).rstrip('/')}{path}"


def alert_url(alert: Alert) -> str:
    """Return the link to an alert: its page (ALERT_URL_NAMES, the first that exists) on SITE_URL."""
    for name in ALERT_URL_NAMES:
        try:
            return _absolute(reverse(name, args=[alert.pk]))
        except NoReverseMatch:
            continue
    return ""


def _one_line(text: str) -> str:
    """Return a subject on one line (a mail header refuses line breaks), at most 250 characters."""
    return " ".join(text.split())[:250]


def _subject_label(alert: Alert) -> str:
    if alert.portfolio_id is not None:
        return f"portfolio {alert.portfolio.code}"
    if alert.instrument_id is not None:
        return f"instrument {alert.instrument.symbol}"
    return alert.subject_key


def _figure_lines(figures: dict) -> list[str]:
    lines = []
    for key, value in figures.items():
        if isinstance(value, dict | list) or value is None or value == "":
            continue
        lines.append(f"  {key}: {value}")
        if len(lines) == MAX_FIGURES:
            break
    return lines


def notification_of_alert(alert: Alert, event: str | None) -> Notification:
    """Compose the message about an alert as it is now (`event`: RAISED, ESCALATED, or None when unknown)."""
    from apps.alerts.services import alert_event_data

    if event == ESCALATED:
        headline = f"Alert escalated to {alert.severity}"
    elif event == RAISED:
        headline = f"New {alert.severity} alert"
    else:
        headline = f"{alert.severity} alert"
    url = alert_url(alert)
    when = "%Y-%m-%d %H:%M:%S UTC"
    lines = [
        alert.title,
        "",
        *([alert.message, ""] if alert.message else []),
        f"Severity: {alert.severity}",
        f"Status: {alert.status}",
        f"Rule: {alert.rule.name}",
        f"Subject: {_subject_label(alert)}",
        f"Seen: {alert.count} time(s), first {alert.first_seen.astimezone(dt.UTC):{when}}, "
        f"last {alert.last_seen.astimezone(dt.UTC):{when}}",
    ]
    figures = _figure_lines(alert.figures or {})
    if figures:
        lines += ["Figures:", *figures]
    if url:
        lines += ["", f"Open: {url}"]
    data = {**alert_event_data(alert, action=IN_APP_ACTION), "notification": event or ""}
    if url:
        data["url"] = url
    return Notification(
        subject=_one_line(f"[RiskRadar] {headline}: {alert.title}"),
        text="\n".join(lines),
        severity=alert.severity,
        url=url,
        data=jsonable(data),
    )


def notification_test(channel: NotificationChannel, user) -> Notification:
    """Compose the test message of a channel."""
    who = user.get_username() if user is not None else "RiskRadar"
    at = timezone.now().astimezone(dt.UTC)
    title = f"Test notification: {channel.name}"
    text = (
        f'This is a test of the notification channel "{channel.name}" ({channel.get_kind_display()}), '
        f"sent by {who} at {at:%Y-%m-%d %H:%M:%S} UTC.\n"
        f"Alerts of severity {channel.min_severity} and above are sent here"
        f"{'' if channel.enabled else ' once the channel is enabled'}."
    )
    data = {
        "action": IN_APP_TEST_ACTION,
        "notification": TEST,
        "severity": AlertSeverity.INFO,
        "title": title,
        "channel": channel.name,
        "created_at": at,
    }
    return Notification(
        subject=_one_line(f"[RiskRadar] {title}"), text=text, severity=AlertSeverity.INFO, data=jsonable(data)
    )


def _mrkdwn(text: str) -> str:
    """Escape the three characters Slack's mrkdwn reserves."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def webhook_body(notification: Notification) -> dict:
    """Return the Slack-compatible JSON body of a webhook (docs/notifications.md describes it).

    `text` is the whole message (Slack's fallback, and all that simple receivers read); `blocks` lay it out in
    Slack; `riskradar` carries the alert event's data for receivers that are programs (Slack ignores it).
    """
    context = f"{notification.severity}"
    if notification.url:
        context += f" · <{notification.url}|Open in RiskRadar>"
    return {
        "text": f"{notification.subject}\n{notification.text}",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{_mrkdwn(notification.subject)}*"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": _mrkdwn(notification.text)[:2900]}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        ],
        "riskradar": notification.data,
    }


# ------------------------------------------------------------------------------ senders


def _truncate(text: str) -> str:
    text = (text or "").strip()
    return text if len(text) <= RESPONSE_MAX else text[: RESPONSE_MAX - 1] + "…"


def send_email(channel: NotificationChannel, notification: Notification) -> Outcome:
    """Send through Django's mail backend (console in development, SMTP when EMAIL_HOST is set)."""
    recipients = [address.strip() for address in channel.target.split(",") if address.strip()]
    if not recipients:
        return Outcome(False, ERR_NO_RECIPIENTS, permanent=True)
    message = EmailMessage(subject=notification.subject, body=notification.text, to=recipients)
    sent = message.send(fail_silently=False)
    return Outcome(bool(sent), f"Sent to {len(recipients)} recipient(s).")


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """urllib would follow a redirect of a POST as a GET without the body: report it instead."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def _read(response) -> str:
    try:
        return response.read(READ_MAX).decode("utf-8", "replace")
    except (OSError, HTTPException):
        return ""


def send_webhook(channel: NotificationChannel, notification: Notification) -> Outcome:
    """POST the JSON body to the channel's URL with a time limit; a 2xx answer is success."""
    url = channel.target.strip()
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        return Outcome(False, ERR_SCHEME, permanent=True)
    request = urllib.request.Request(
        url,
        data=json.dumps(webhook_body(notification)).encode(),
        method="POST",
        headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": "RiskRadar notifications"},
    )
    opener = urllib.request.build_opener(_RefuseRedirects)
    try:
        with opener.open(request, timeout=send_timeout()) as response:
            return Outcome(True, f"HTTP {response.status}: {_read(response)}")
    except urllib.error.HTTPError as exc:
        body = _read(exc)
        if 300 <= exc.code < 400:
            location = exc.headers.get("Location", "?") if exc.headers else "?"
            return Outcome(False, ERR_REDIRECT.format(code=exc.code, location=location), permanent=True)
        permanent = 400 <= exc.code < 500 and exc.code not in RETRYABLE_HTTP
        return Outcome(False, f"HTTP {exc.code}: {body or exc.reason}", permanent=permanent)
    except urllib.error.URLError as exc:
        return Outcome(False, f"Not reachable: {exc.reason}")
    except (TimeoutError, OSError, HTTPException) as exc:
        return Outcome(False, f"{type(exc).__name__}: {exc}")


def send_in_app(channel: NotificationChannel, notification: Notification) -> Outcome:
    """Publish the stream's "alert" event that pages show as a toast (kept for clients that reconnect)."""
    publish("alert", notification.data)
    return Outcome(True, "Published on the stream.")


SENDERS = {
    NotificationChannel.Kind.EMAIL: send_email,
    NotificationChannel.Kind.WEBHOOK: send_webhook,
    NotificationChannel.Kind.IN_APP: send_in_app,
}


def channel_send(channel: NotificationChannel, notification: Notification) -> Outcome:
    """Send over one channel; any error becomes a failed Outcome, never an exception."""
    sender = SENDERS.get(channel.kind)
    if sender is None:
        return Outcome(False, ERR_UNKNOWN_KIND.format(kind=channel.kind), permanent=True)
    try:
        outcome = sender(channel, notification)
    except Exception as exc:
        logger.warning("Notification over channel %s (%s) failed", channel.pk, channel.kind, exc_info=True)
        outcome = Outcome(False, f"{type(exc).__name__}: {exc}")
    return Outcome(outcome.ok, _truncate(outcome.response) or ("Sent." if outcome.ok else "Failed."), outcome.permanent)


# ------------------------------------------------------------------------------ the lifecycle hook


def on_alert_event(alert: Alert, event: str) -> None:
    """Notify the rule's channels of a raised or escalated alert once the caller's transaction commits.

    Call inside the lifecycle's transaction, after the alert is saved. Returns at once: the channels are
    picked and sent to by the worker. A failure to queue is logged, never raised into the lifecycle.
    """
    if event not in NOTIFIED_EVENTS:
        raise ValueError(ERR_UNKNOWN_EVENT.format(event=event))
    alert_id, rule_id = alert.pk, alert.rule_id

    def queue() -> None:
        from django_q.tasks import async_task

        try:
            if not NotificationChannel.objects.filter(rules=rule_id, enabled=True).exists():
                return
            async_task(NOTIFY_TASK, alert_id, event, task_name=f"notify-{alert_id}-{event}", group=TASK_GROUP)
        except Exception:
            logger.exception("Could not queue the notifications of alert %s (%s)", alert_id, event)

    transaction.on_commit(queue)


def on_alert_events(alerts: list[Alert], event: str) -> None:
    """on_alert_event for the alerts raised or escalated together by one evaluation: one task for them all.

    The worker notifies them one after the other (notify_alerts); the rules' channels are looked up once.
    """
    if event not in NOTIFIED_EVENTS:
        raise ValueError(ERR_UNKNOWN_EVENT.format(event=event))
    if not alerts:
        return
    rule_of = {alert.pk: alert.rule_id for alert in alerts}

    def queue() -> None:
        from django_q.tasks import async_task

        try:
            heard = set(
                NotificationChannel.objects.filter(rules__in=set(rule_of.values()), enabled=True).values_list(
                    "rules", flat=True
                )
            )
            ids = sorted(pk for pk, rule_id in rule_of.items() if rule_id in heard)
            if ids:
                async_task(
                    NOTIFY_MANY_TASK, ids, event, task_name=f"notify-{ids[0]}-{len(ids)}-{event}", group=TASK_GROUP
                )
        except Exception:
            logger.exception("Could not queue the notifications of %s alert(s) (%s)", len(rule_of), event)

    transaction.on_commit(queue)


# ------------------------------------------------------------------------------ fan-out and delivery


def alert_channels(alert: Alert) -> list[NotificationChannel]:
    """Return the rule's enabled channels whose minimum severity the alert's severity reaches."""
    reached = AlertSeverity.values[: AlertSeverity.rank(alert.severity) + 1]
    return list(alert.rule.channels.filter(enabled=True, min_severity__in=reached).order_by("id"))


def _queue_delivery(attempt: NotificationAttempt, event: str | None) -> None:
    from django_q.tasks import async_task

    async_task(DELIVER_TASK, attempt.pk, event, task_name=f"notify-attempt-{attempt.pk}", group=TASK_GROUP)


def alert_notify(*, alert_id: int, event: str) -> list[NotificationAttempt]:
    """Write a PENDING first attempt and queue its delivery for each channel the alert goes to; return them.

    An alert deleted meanwhile notifies nobody. Attempts and their tasks commit together (ORM broker).
    """
    if event not in NOTIFIED_EVENTS:
        raise ValueError(ERR_UNKNOWN_EVENT.format(event=event))
    alert = Alert.objects.select_related("rule").filter(pk=alert_id).first()
    if alert is None:
        return []
    now = timezone.now()
    attempts = []
    with transaction.atomic():
        for channel in alert_channels(alert):
            attempt = NotificationAttempt.objects.create(
                alert=alert, channel=channel, attempt=1, status=Status.PENDING, at=now
            )
            _queue_delivery(attempt, event)
            attempts.append(attempt)
    return attempts


def _claim(attempt_id: int, now: dt.datetime) -> bool:
    """Take a PENDING attempt for this run: unclaimed, or claimed by a run older than the lease (killed)."""
    free = Q(response="") | Q(response=SENDING, at__lt=now - claim_lease())
    return bool(
        NotificationAttempt.objects.filter(free, pk=attempt_id, status=Status.PENDING).update(response=SENDING, at=now)
    )


def _schedule_retry(attempt: NotificationAttempt, event: str | None, now: dt.datetime) -> NotificationAttempt:
    from django_q.models import Schedule

    due = now + retry_delay(attempt.attempt)
    following = NotificationAttempt.objects.create(
        alert_id=attempt.alert_id,
        channel_id=attempt.channel_id,
        attempt=attempt.attempt + 1,
        status=Status.PENDING,
        at=due,
    )
    Schedule.objects.create(
        name=f"alerts: notification retry #{following.pk}"[:100],
        func=DELIVER_TASK,
        args=repr((following.pk, event)),
        schedule_type=Schedule.ONCE,
        repeats=-1,
        next_run=due,
    )
    return following


def attempt_deliver(*, attempt_id: int, event: str | None = None) -> str:
    """Send one PENDING attempt and record the outcome on it; schedule the next attempt after a failure.

    Returns the attempt's new status, or "" when there was nothing to do (it is gone, done, or being sent by
    another run). Never raises for a delivery failure: the failure is the attempt's outcome.
    """
    now = timezone.now()
    if not _claim(attempt_id, now):
        return ""
    attempt = NotificationAttempt.objects.select_related(
        "channel", "alert__rule", "alert__portfolio", "alert__instrument"
    ).get(pk=attempt_id)
    channel = attempt.channel
    if not channel.enabled:
        outcome = Outcome(False, ERR_DISABLED, permanent=True)
    else:
        outcome = channel_send(channel, notification_of_alert(attempt.alert, event))
    if outcome.ok:
        status = Status.SENT
    elif outcome.permanent or attempt.attempt >= max_attempts():
        status = Status.GAVE_UP
    else:
        status = Status.FAILED
    with transaction.atomic():
        # Only the run that holds the claim records; a run that lost it (its lease ran out) records nothing.
        mine = NotificationAttempt.objects.filter(pk=attempt_id, status=Status.PENDING, response=SENDING, at=now)
        if not mine.update(status=status, response=outcome.response):
            return ""
        if status == Status.FAILED:
            _schedule_retry(attempt, event, now)
    if status == Status.SENT:
        metrics.count("notifications_sent")
    if status == Status.GAVE_UP:
        logger.warning(
            "Gave up notifying alert %s over channel %s after attempt %s: %s",
            attempt.alert_id,
            channel.pk,
            attempt.attempt,
            outcome.response,
        )
    return status


def attempts_requeue_overdue(*, now: dt.datetime | None = None) -> int:
    """Queue again the attempts left PENDING well past their time; return how many.

    Unclaimed attempts more than OVERDUE_AFTER past due, and claims older than the lease (their run was
    killed and the worker dropped the task). A duplicate of a task that still exists is harmless: the claim
    lets one of them send.
    """
    now = now or timezone.now()
    overdue = Q(response="", at__lt=now - OVERDUE_AFTER) | Q(response=SENDING, at__lt=now - claim_lease())
    ids = list(NotificationAttempt.objects.filter(overdue, status=Status.PENDING).values_list("pk", flat=True))
    with transaction.atomic():
        for pk in ids:
            _queue_delivery(NotificationAttempt(pk=pk), None)
    return len(ids)


# ------------------------------------------------------------------------------ a test of a channel


@dataclass(frozen=True)
class ChannelTestResult:
    """The result of a channel's test message."""

    channel: NotificationChannel
    sent: bool
    status: str
    response: str
    at: dt.datetime


def channel_send_test(*, channel: NotificationChannel, user) -> ChannelTestResult:
    """Send a test message over the channel now (within NOTIFY_TIMEOUT_SECONDS) and record it.

    A disabled channel is tested too, so it can be checked before it is enabled. The outcome is kept in the
    channel's change history (who, when, SENT or FAILED and the response); nothing is retried.
    """
    at = timezone.now()
    outcome = channel_send(channel, notification_test(channel, user))
    status = Status.SENT if outcome.ok else Status.FAILED
    LogEntry.objects.log_create(
        channel,
        force_log=True,
        action=LogEntry.Action.UPDATE,
        actor=user,
        changes={"test_send": ["", f"{status}: {outcome.response}"[:RESPONSE_MAX]]},
        additional_data={"test_send": {"status": status, "response": outcome.response, "at": at.isoformat()}},
    )
    return ChannelTestResult(channel=channel, sent=outcome.ok, status=status, response=outcome.response, at=at)
