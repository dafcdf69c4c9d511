"""The alerts API: the inbox and its filters, an alert, acknowledge and resolve (one or many), stats, audit."""

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.alerts.models import Alert, AlertSeverity, AlertStatus, Disposition
from apps.audit.models import AuditAction, AuditEvent
from tests.factories import AlertFactory, AlertRuleFactory, InstrumentFactory, PortfolioFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def resolved(**kwargs) -> Alert:
    return AlertFactory(status=AlertStatus.RESOLVED, resolved_at=NOW, disposition=Disposition.TRUE_POSITIVE, **kwargs)


def acknowledged(**kwargs) -> Alert:
    return AlertFactory(status=AlertStatus.ACKNOWLEDGED, acknowledged_at=NOW, **kwargs)


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content[:500]
    return [row["id"] for row in response.json()["results"]]


# ------------------------------------------------------------------------------ reading


@pytest.fixture
def inbox():
    """Alerts of two rules on two portfolios and an instrument, in every status, seen at different times."""
    var, velocity = (
        AlertRuleFactory(name="VaR"),
        AlertRuleFactory(name="Velocity", kind="trade_velocity", parameters={}),
    )
    alpha, beta = PortfolioFactory(code="ALPHA"), PortfolioFactory(code="BETA")
    stock = InstrumentFactory(symbol="RELIANCE")
    return {
        "open_alpha": AlertFactory(rule=var, portfolio=alpha, severity="CRITICAL", last_seen=NOW),
        "ack_beta": acknowledged(rule=var, portfolio=beta, severity="HIGH", last_seen=NOW - dt.timedelta(hours=1)),
        "resolved_alpha": resolved(
            rule=velocity, portfolio=alpha, severity="MEDIUM", last_seen=NOW - dt.timedelta(days=2)
        ),
        "open_stock": AlertFactory(
            rule=velocity,
            portfolio=None,
            instrument=stock,
            subject_key=f"instrument:{stock.pk}",
            severity="LOW",
            last_seen=NOW - dt.timedelta(days=3),
        ),
    }


def test_the_list_is_most_recently_seen_first_and_paginated(inbox, viewer):
    response = client_for(viewer).get("/api/v1/alerts", {"limit": 2})
    body = response.json()
    assert body["count"] == 4 and body["next"]
    assert ids(response) == [inbox["open_alpha"].pk, inbox["ack_beta"].pk]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"severity": "CRITICAL"}, ["open_alpha"]),
        ({"severity": "HIGH,CRITICAL"}, ["open_alpha", "ack_beta"]),
        ({"status": "OPEN"}, ["open_alpha", "open_stock"]),
        ({"status": "OPEN,ACKNOWLEDGED"}, ["open_alpha", "ack_beta", "open_stock"]),
        ({"portfolio": "alpha"}, ["open_alpha", "resolved_alpha"]),
        ({"portfolio": "ALPHA,BETA", "status": "OPEN"}, ["open_alpha"]),
        ({"since": (NOW - dt.timedelta(days=1)).isoformat()}, ["open_alpha", "ack_beta"]),
        ({"ordering": "-severity_rank"}, ["open_alpha", "ack_beta", "resolved_alpha", "open_stock"]),
        ({"ordering": "severity_rank"}, ["open_stock", "resolved_alpha", "ack_beta", "open_alpha"]),
    ],
)
def test_filters_and_ordering(inbox, viewer, query, expected):
    assert ids(client_for(viewer).get("/api/v1/alerts", query)) == [inbox[name].pk for name in expected]


def test_the_rule_filter(inbox, viewer):
    rule = inbox["open_stock"].rule
    assert ids(client_for(viewer).get("/api/v1/alerts", {"rule": rule.pk})) == [
        inbox["resolved_alpha"].pk,
        inbox["open_stock"].pk,
    ]


@pytest.mark.parametrize(
    "query",
    [
        {"severity": "SEVERE"},
        {"status": "CLOSED"},
        {"since": "yesterday"},
        {"rule": "1.5"},
        # Larger than any id: SQLite could not compare it with the column (a 500 before ids were bounded).
        {"rule": str(2**63)},
        {"rule": "-2.6e272"},
    ],
)
def test_a_bad_filter_value_is_refused_naming_it(viewer, query):
    response = client_for(viewer).get("/api/v1/alerts", query)
    assert response.status_code == 400 and set(response.json()) == set(query)


def test_an_alert_shows_its_rule_subject_figures_and_workflow(viewer, analyst):
    rule = AlertRuleFactory(name="Desk VaR")
    alert = AlertFactory(rule=rule, portfolio=PortfolioFactory(code="ALPHA"), figures={"value": 0.06, "hard": 0.05})
    client_for(analyst).post(f"/api/v1/alerts/{alert.pk}/acknowledge")
    body = client_for(viewer).get(f"/api/v1/alerts/{alert.pk}").json()
    assert body["rule"] == {"id": rule.pk, "name": "Desk VaR", "kind": "risk_limit"}
    assert (body["portfolio"], body["symbol"], body["subject_key"]) == ("ALPHA", None, alert.subject_key)
    assert body["figures"] == {"value": 0.06, "hard": 0.05}
    assert (body["status"], body["acknowledged_by"], body["resolved_by"]) == ("ACKNOWLEDGED", "analyst", None)
    assert body["acknowledged_at"].endswith("Z") and body["count"] == 1


def test_an_unknown_alert_is_404(viewer):
    assert client_for(viewer).get("/api/v1/alerts/999999").status_code == 404


# ------------------------------------------------------------------------------ workflow


@pytest.fixture
def alert():
    return AlertFactory(rule=AlertRuleFactory(name="Desk VaR"))


def test_acknowledge_then_resolve(alert, analyst):
    client = client_for(analyst)
    response = client.post(f"/api/v1/alerts/{alert.pk}/acknowledge")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["acknowledged_by"]) == ("ACKNOWLEDGED", "analyst")
    response = client.post(
        f"/api/v1/alerts/{alert.pk}/resolve", {"disposition": "FALSE_POSITIVE", "note": "Bad tick."}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["disposition"], body["resolution_note"], body["resolved_by"]) == (
        "RESOLVED",
        "FALSE_POSITIVE",
        "Bad tick.",
        "analyst",
    )


def test_an_open_alert_may_be_resolved_without_acknowledging_it(alert, admin_user):
    response = client_for(admin_user).post(
        f"/api/v1/alerts/{alert.pk}/resolve", {"disposition": "TRUE_POSITIVE", "note": "Cut."}, format="json"
    )
    assert response.status_code == 200 and response.json()["status"] == "RESOLVED"


def test_acknowledging_twice_is_a_conflict_naming_the_status(alert, analyst):
    client = client_for(analyst)
    client.post(f"/api/v1/alerts/{alert.pk}/acknowledge")
    response = client.post(f"/api/v1/alerts/{alert.pk}/acknowledge")
    assert response.status_code == 409
    assert response.json() == {"status": [f"Alert #{alert.pk} is ACKNOWLEDGED; it cannot be acknowledged."]}


def test_a_resolved_alert_is_final(alert, analyst):
    client = client_for(analyst)
    body = {"disposition": "TRUE_POSITIVE", "note": "Done."}
    client.post(f"/api/v1/alerts/{alert.pk}/resolve", body, format="json")
    again = client.post(f"/api/v1/alerts/{alert.pk}/resolve", body, format="json")
    assert again.status_code == 409
    assert again.json() == {"status": [f"Alert #{alert.pk} is RESOLVED; it cannot be resolved."]}
    acknowledge = client.post(f"/api/v1/alerts/{alert.pk}/acknowledge")
    assert acknowledge.status_code == 409 and "status" in acknowledge.json()
    alert.refresh_from_db()
    assert (alert.status, alert.resolution_note) == (AlertStatus.RESOLVED, "Done.")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"note": "Done."}, "disposition"),
        ({"disposition": "MAYBE", "note": "Done."}, "disposition"),
        ({"disposition": "TRUE_POSITIVE"}, "note"),
        ({"disposition": "TRUE_POSITIVE", "note": "   "}, "note"),
    ],
)
def test_a_resolution_needs_a_disposition_and_a_note(alert, analyst, body, field):
    response = client_for(analyst).post(f"/api/v1/alerts/{alert.pk}/resolve", body, format="json")
    assert response.status_code == 400 and set(response.json()) == {field}
    alert.refresh_from_db()
    assert alert.status == AlertStatus.OPEN


def test_a_viewer_may_not_work_alerts(alert, viewer):
    client = client_for(viewer)
    assert client.post(f"/api/v1/alerts/{alert.pk}/acknowledge").status_code == 403
    response = client.post(
        f"/api/v1/alerts/{alert.pk}/resolve", {"disposition": "TRUE_POSITIVE", "note": "x"}, format="json"
    )
    assert response.status_code == 403
    alert.refresh_from_db()
    assert alert.status == AlertStatus.OPEN


def test_working_an_unknown_alert_is_404(analyst):
    assert client_for(analyst).post("/api/v1/alerts/999999/acknowledge").status_code == 404


# ------------------------------------------------------------------------------ bulk acknowledge


def test_bulk_acknowledge_answers_for_each_id(analyst):
    first, second = AlertFactory(), AlertFactory()
    already = acknowledged()
    done = resolved()
    asked = [first.pk, already.pk, done.pk, 999999, second.pk, first.pk]
    response = client_for(analyst).post("/api/v1/alerts/acknowledge", {"ids": asked}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["acknowledged"] == [first.pk, second.pk]
    assert body["results"] == [
        {"id": first.pk, "result": "acknowledged", "status": "ACKNOWLEDGED", "message": ""},
        {
            "id": already.pk,
            "result": "skipped",
            "status": "ACKNOWLEDGED",
            "message": f"Alert #{already.pk} is ACKNOWLEDGED; it cannot be acknowledged.",
        },
        {
            "id": done.pk,
            "result": "skipped",
            "status": "RESOLVED",
            "message": f"Alert #{done.pk} is RESOLVED; it cannot be acknowledged.",
        },
        {"id": 999999, "result": "not_found", "status": None, "message": "No alert has id 999999."},
        {"id": second.pk, "result": "acknowledged", "status": "ACKNOWLEDGED", "message": ""},
    ]
    statuses = dict(Alert.objects.values_list("pk", "status"))
    assert statuses == {
        first.pk: "ACKNOWLEDGED",
        second.pk: "ACKNOWLEDGED",
        already.pk: "ACKNOWLEDGED",
        done.pk: "RESOLVED",
    }
    assert Alert.objects.get(pk=already.pk).acknowledged_by is None  # left as it was
    events = AuditEvent.objects.filter(action=AuditAction.ALERT_ACKNOWLEDGED)
    assert sorted(int(e.object_id) for e in events) == sorted([first.pk, second.pk])


@pytest.mark.parametrize(
    "body",
    # 2**63: larger than any id, which SQLite could not even compare (a 500 before ids were bounded).
    [{}, {"ids": []}, {"ids": ["one"]}, {"ids": [0]}, {"ids": [2, 2**63]}, {"ids": 5}, {"ids": list(range(1, 502))}],
)
def test_bulk_acknowledge_refuses_a_bad_list_naming_ids(analyst, body):
    alert = AlertFactory()
    response = client_for(analyst).post("/api/v1/alerts/acknowledge", body, format="json")
    assert response.status_code == 400 and set(response.json()) == {"ids"}
    alert.refresh_from_db()
    assert alert.status == AlertStatus.OPEN


def test_a_viewer_may_not_bulk_acknowledge(viewer):
    alert = AlertFactory()
    response = client_for(viewer).post("/api/v1/alerts/acknowledge", {"ids": [alert.pk]}, format="json")
    assert response.status_code == 403
    alert.refresh_from_db()
    assert alert.status == AlertStatus.OPEN


# ------------------------------------------------------------------------------ stats


def test_stats_count_by_status_open_by_severity_and_per_day(viewer):
    today = timezone.now()
    yesterday = today - dt.timedelta(days=1)
    AlertFactory(severity="HIGH", first_seen=today)
    AlertFactory(severity="HIGH", first_seen=yesterday)
    acknowledged(severity="CRITICAL", first_seen=yesterday)
    resolved(severity="LOW", first_seen=today)
    AlertFactory(severity="LOW", first_seen=today - dt.timedelta(days=10))  # outside a 3-day window
    response = client_for(viewer).get("/api/v1/alerts/stats", {"days": 3})
    assert response.status_code == 200
    body = response.json()
    assert body["days"] == 3
    assert body["by_status"] == {"OPEN": 3, "ACKNOWLEDGED": 1, "RESOLVED": 1}
    assert body["open_by_severity"] == {"INFO": 0, "LOW": 1, "MEDIUM": 0, "HIGH": 2, "CRITICAL": 1}
    days = body["per_day"]
    assert [d["date"] for d in days] == [
        (today.astimezone(dt.UTC).date() - dt.timedelta(days=n)).isoformat() for n in (2, 1, 0)
    ]
    zero = dict.fromkeys(AlertSeverity.values, 0)
    assert days[0] == {"date": days[0]["date"], **zero, "total": 0}
    assert days[1] == {"date": days[1]["date"], **zero, "HIGH": 1, "CRITICAL": 1, "total": 2}
    assert days[2] == {"date": days[2]["date"], **zero, "HIGH": 1, "LOW": 1, "total": 2}


def test_stats_default_to_thirty_days(viewer):
    body = client_for(viewer).get("/api/v1/alerts/stats").json()
    assert body["days"] == 30 and len(body["per_day"]) == 30


@pytest.mark.parametrize("days", ["0", "367", "many"])
def test_stats_refuse_a_bad_window_naming_days(viewer, days):
    response = client_for(viewer).get("/api/v1/alerts/stats", {"days": days})
    assert response.status_code == 400 and set(response.json()) == {"days"}


# ------------------------------------------------------------------------------ audit


def test_acknowledge_and_resolve_over_the_api_are_audited_with_before_and_after(alert, analyst):
    client = client_for(analyst)
    client.post(f"/api/v1/alerts/{alert.pk}/acknowledge")
    client.post(f"/api/v1/alerts/{alert.pk}/resolve", {"disposition": "TRUE_POSITIVE", "note": "Cut."}, format="json")
    acknowledged_event = AuditEvent.objects.get(action=AuditAction.ALERT_ACKNOWLEDGED)
    resolved_event = AuditEvent.objects.get(action=AuditAction.ALERT_RESOLVED)
    for event in (acknowledged_event, resolved_event):
        assert (event.actor, event.object_type, event.object_id) == (analyst, "alerts.alert", str(alert.pk))
    assert acknowledged_event.before == {"status": "OPEN"}
    assert acknowledged_event.after["status"] == "ACKNOWLEDGED"
    assert resolved_event.before == {"status": "ACKNOWLEDGED"}
    assert resolved_event.after == {"status": "RESOLVED", "disposition": "TRUE_POSITIVE", "resolution_note": "Cut."}


def test_a_refused_step_records_nothing(alert, analyst, viewer):
    client_for(viewer).post(f"/api/v1/alerts/{alert.pk}/acknowledge")
    client_for(analyst).post(f"/api/v1/alerts/{alert.pk}/resolve", {"disposition": "TRUE_POSITIVE"}, format="json")
    assert not AuditEvent.objects.filter(
        action__in=[AuditAction.ALERT_ACKNOWLEDGED, AuditAction.ALERT_RESOLVED]
    ).exists()
