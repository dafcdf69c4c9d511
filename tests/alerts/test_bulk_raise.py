"""A rule's breaches written together (_alerts_raise_many) give what alert_raise gives one breach at a time."""

import datetime as dt

import pytest
from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError

from apps.alerts import services
from apps.alerts.conditions import HARD, SOFT
from apps.alerts.models import Alert, AlertSeverity, AlertStatus, RuleKind
from apps.alerts.services import EvaluationContext, EvaluationResult, Observation, Subject
from apps.stream.models import StreamEvent
from tests.alerts.conftest import NOW
from tests.factories import AlertFactory, AlertRuleFactory, NotificationChannelFactory, PortfolioFactory

pytestmark = pytest.mark.django_db

FIELDS = ("count", "severity", "status", "title", "message", "figures")


def _rule(name: str):
    rule = AlertRuleFactory(
        name=name,
        kind=RuleKind.TRADE_ZSCORE,
        parameters={"threshold": 3.0, "lookback_trades": 50, "min_history": 10, "min_notional": 0},
        severity=AlertSeverity.HIGH,
        cooldown=dt.timedelta(hours=1),
        auto_resolve=False,
    )
    rule.channels.add(NotificationChannelFactory())
    return rule


def _desk(rule, portfolios):
    """A: an active LOW alert of the rule; B: resolved 5 minutes ago (in the cooldown); C and D: nothing."""
    a, b, _c, _d = portfolios
    AlertFactory(
        rule=rule,
        portfolio=a,
        title="set-up A",
        severity=AlertSeverity.MEDIUM,
        count=2,
        figures={"trade_ids": [1, 2]},
        first_seen=NOW - dt.timedelta(hours=2),
    )
    AlertFactory(
        rule=rule,
        portfolio=b,
        title="set-up B",
        status=AlertStatus.RESOLVED,
        resolved_at=NOW - dt.timedelta(minutes=5),
        first_seen=NOW - dt.timedelta(hours=1),
    )


def _observations(portfolios):
    a, b, c, d = portfolios
    plan = [(c, SOFT, 10), (a, SOFT, 11), (b, HARD, 12), (c, HARD, 13), (d, SOFT, 14), (a, HARD, 15), (b, SOFT, 16)]
    plan.append((c, SOFT, 17))
    return [
        Observation(
            Subject.of_portfolio(p),
            level,
            title=f"{p.code} trade {trade_id}",
            message=f"z of trade {trade_id}",
            figures={"value": float(trade_id), "trade_id": trade_id, "trade_ids": [trade_id]},
        )
        for p, level, trade_id in plan
    ]


def _state(rule, portfolios) -> dict:
    alerts = Alert.objects.filter(rule=rule).order_by("pk")
    return {
        (portfolios.index(a.portfolio), a.status): {f: getattr(a, f) for f in FIELDS} | {"last_seen": a.last_seen}
        for a in alerts
    }


def test_breaches_written_together_match_alert_raise_one_at_a_time(django_capture_on_commit_callbacks, monkeypatch):
    portfolios = [PortfolioFactory(code=code) for code in "ABCD"]
    together, one_by_one = _rule("together"), _rule("one by one")
    for rule in (together, one_by_one):
        _desk(rule, portfolios)
    observations = _observations(portfolios)

    queued = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda func, *args, **kwargs: queued.append((func, args)))
    bulk = EvaluationResult()
    events_before = StreamEvent.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        services._apply_in_order(together, observations, bulk, EvaluationContext(NOW), set())
    alert_events = [
        e
        for e in StreamEvent.objects.filter(type="alert").order_by("seq")[events_before:]
        if e.data["action"] in ("raised", "updated")
    ]

    sequential = EvaluationResult()
    for obs in observations:  # the reference: one alert_raise per breach, in order
        sequential.record(
            services.alert_raise(
                rule=one_by_one,
                subject=obs.subject,
                severity=services._severity(one_by_one, obs.level),
                title=obs.title,
                message=obs.message,
                figures={**obs.figures, "level": obs.level},
                now=NOW,
            )
        )

    assert _state(together, portfolios) == _state(one_by_one, portfolios)
    a, c = _state(together, portfolios)[(0, "OPEN")], _state(together, portfolios)[(2, "OPEN")]
    assert a["count"] == 4 and a["severity"] == AlertSeverity.HIGH  # escalated by the hard breach
    assert c["count"] == 3 and c["figures"]["trade_ids"] == [10, 13, 17] and c["title"] == "C trade 17"
    assert (3, "OPEN") in _state(together, portfolios)  # D raised
    assert not Alert.objects.filter(rule=together, portfolio=portfolios[1], status="OPEN").exists()  # B cooled
    assert sorted(x.portfolio.code for x in bulk.raised) == sorted(x.portfolio.code for x in sequential.raised)
    assert len(bulk.updated) == len(sequential.updated) == 4  # A twice, C twice
    assert bulk.suppressed == sequential.suppressed == 2

    # One stream event per alert written (raised C and D, updated A), numbered consecutively.
    assert sorted((e.data["action"], e.data["subject_key"]) for e in alert_events) == sorted(
        [("raised", f"portfolio:{portfolios[2].pk}"), ("raised", f"portfolio:{portfolios[3].pk}")]
        + [("updated", f"portfolio:{portfolios[0].pk}")]
    )
    assert [e.seq for e in alert_events] == list(range(alert_events[0].seq, alert_events[0].seq + 3))
    # The notifications: one task for the two raised alerts, one for the escalation of A.
    many = sorted((args[1], len(args[0])) for func, args in queued if func.endswith("notify_alerts"))
    assert many == [("escalated", 1), ("raised", 2)]
    # Change history: the new alerts' creation and A's severity change, as auditlog records alert_raise's saves.
    alert_type = ContentType.objects.get_for_model(Alert)
    logged = LogEntry.objects.filter(
        content_type=alert_type, object_id__in=Alert.objects.filter(rule=together).values("pk")
    )
    assert sorted(logged.values_list("action", flat=True)) == sorted(
        [LogEntry.Action.CREATE] * 4 + [LogEntry.Action.UPDATE]  # the two of the set-up, C, D; A's escalation
    )


def test_a_raced_insert_falls_back_to_one_subject_at_a_time(monkeypatch):
    """The partial unique index refusing an insert (another evaluation raised the alert): alert_raise per subject."""
    portfolios = [PortfolioFactory(code=code) for code in "ABCD"]
    rule = _rule("raced")
    observations = [o for o in _observations(portfolios) if o.subject.portfolio.code in "CD"]
    calls = []

    def refused(objs):
        calls.append(len(objs))
        raise IntegrityError("duplicate key value violates unique constraint alert_one_active_per_subject")

    monkeypatch.setattr(services, "rows_insert", refused)
    result = EvaluationResult()
    services._apply_in_order(rule, observations, result, EvaluationContext(NOW), set())

    assert calls == [2]
    c, d = (Alert.objects.get(rule=rule, portfolio=portfolios[k]) for k in (2, 3))
    assert (c.count, c.severity, c.figures["trade_ids"]) == (3, AlertSeverity.HIGH, [10, 13, 17])
    assert (d.count, d.severity) == (1, AlertSeverity.MEDIUM)
    assert sorted(a.pk for a in result.raised) == [c.pk, d.pk] and len(result.updated) == 2


def test_alerts_raised_together_are_each_notified_by_the_worker(django_capture_on_commit_callbacks):
    """The one notify_alerts task (run at once here: the test cluster is synchronous) writes each alert's attempts."""
    from apps.alerts.models import NotificationAttempt

    portfolios = [PortfolioFactory(code=code) for code in "ABCD"]
    rule = _rule("notified")
    observations = [o for o in _observations(portfolios) if o.subject.portfolio.code in "CD"]
    with django_capture_on_commit_callbacks(execute=True):
        services._apply_in_order(rule, observations, EvaluationResult(), EvaluationContext(NOW), set())

    raised = set(Alert.objects.filter(rule=rule).values_list("pk", flat=True))
    assert len(raised) == 2
    attempts = NotificationAttempt.objects.filter(alert__rule=rule)
    assert sorted(attempts.values_list("alert_id", flat=True)) == sorted(raised)  # one channel, one attempt each
    assert set(attempts.values_list("channel_id", flat=True)) == set(rule.channels.values_list("pk", flat=True))
