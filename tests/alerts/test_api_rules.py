"""Alert rules over the API: read by every role with their precision, written by Admins through the rule
services (parameters validated per kind, audited), and dry runs of saved and unsaved rules."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.alerts.models import Alert, AlertRule, AlertStatus, Disposition
from apps.audit.models import AuditAction, AuditEvent
from tests.factories import (
    AlertFactory,
    AlertRuleFactory,
    LimitIncreaseFactory,
    NotificationChannelFactory,
    PortfolioFactory,
    RiskSnapshotFactory,
)

pytestmark = pytest.mark.django_db

HOUR = dt.timedelta(hours=1)
NEW_RULE = {
    "name": "Desk ES",
    "kind": "risk_limit",
    "parameters": {"figure": "es", "hard": 0.07},
    "severity": "CRITICAL",
}


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def rule_events():
    return AuditEvent.objects.filter(action=AuditAction.RULE_CHANGED).order_by("seq")


# ------------------------------------------------------------------------------ reading


def test_each_rule_shows_its_precision_from_the_dispositions(viewer):
    noisy, quiet = AlertRuleFactory(name="Noisy"), AlertRuleFactory(name="Quiet")
    for disposition in [Disposition.TRUE_POSITIVE] * 3 + [Disposition.FALSE_POSITIVE]:
        AlertFactory(rule=noisy, status=AlertStatus.RESOLVED, resolved_at=timezone.now(), disposition=disposition)
    AlertFactory(rule=noisy, status=AlertStatus.RESOLVED, resolved_at=timezone.now(), auto_resolved=True)
    AlertFactory(rule=noisy)  # open: no disposition yet
    client = client_for(viewer)
    rows = {row["name"]: row for row in client.get("/api/v1/alerts/rules").json()["results"]}
    assert rows["Noisy"]["precision"] == {
        "true_positives": 3,
        "false_positives": 1,
        "reviewed": 4,
        "precision": 0.75,
    }
    assert rows["Quiet"]["precision"] == {"true_positives": 0, "false_positives": 0, "reviewed": 0, "precision": None}
    detail = client.get(f"/api/v1/alerts/rules/{noisy.pk}").json()
    assert detail["precision"]["precision"] == 0.75
    assert detail["parameters"] == {"figure": "var", "basis": "fraction_of_gross", "soft": 0.04, "hard": 0.05}
    assert detail["cooldown"] == "00:15:00"
    assert quiet.pk != noisy.pk


def test_rules_filter_by_kind_and_enabled(viewer):
    AlertRuleFactory(name="VaR")
    AlertRuleFactory(name="Fast", kind="trade_velocity", parameters={}, enabled=False)
    client = client_for(viewer)
    assert [r["name"] for r in client.get("/api/v1/alerts/rules", {"kind": "trade_velocity"}).json()["results"]] == [
        "Fast"
    ]
    assert [r["name"] for r in client.get("/api/v1/alerts/rules", {"enabled": "true"}).json()["results"]] == ["VaR"]


# ------------------------------------------------------------------------------ writing


def test_an_admin_creates_a_rule_with_its_parameters_completed_and_audited(admin_user):
    channel = NotificationChannelFactory(name="Desk")
    body = {**NEW_RULE, "scope": "portfolio", "scope_portfolio": "alpha", "channels": [channel.pk]}
    PortfolioFactory(code="ALPHA")
    response = client_for(admin_user).post("/api/v1/alerts/rules", body, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["parameters"] == {"figure": "es", "basis": "fraction_of_gross", "soft": None, "hard": 0.07}
    assert (data["scope"], data["scope_portfolio"], data["channels"]) == ("portfolio", "ALPHA", [channel.pk])
    assert (data["created_by"], data["updated_by"]) == ("admin", "admin")
    rule = AlertRule.objects.get(name="Desk ES")
    assert response["Location"].endswith(f"/api/v1/alerts/rules/{rule.pk}")
    (event,) = rule_events()
    assert (event.actor, event.object_id, event.before, event.detail) == (
        admin_user,
        str(rule.pk),
        None,
        {"change": "created"},
    )
    assert event.after["parameters"]["hard"] == 0.07 and event.after["channels"] == [channel.pk]


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        (
            {**NEW_RULE, "parameters": {"figure": "es", "hard": -1}},
            {"parameters": ["hard: must be greater than 0."]},
        ),
        (
            {**NEW_RULE, "parameters": {"figure": "es", "hard": 0.07, "window": 5}},
            {"parameters": ["window: not a parameter of this kind; known: figure, basis, soft, hard."]},
        ),
        (
            {**NEW_RULE, "parameters": {"figure": "es", "soft": 0.08, "hard": 0.07}},
            {"parameters": ["soft: must be below hard (0.07)."]},
        ),
        ({**NEW_RULE, "scope": "portfolio"}, {"scope_portfolio": ["Choose the portfolio the rule watches."]}),
        ({**NEW_RULE, "kind": "sometimes"}, {"kind": ['"sometimes" is not a valid choice.']}),
        ({**NEW_RULE, "scope_portfolio": "NOPE"}, {"scope_portfolio": ["No portfolio has the code NOPE."]}),
        # PostgreSQL refuses a NUL byte in a query (a 500 there before the field refused it).
        (
            {**NEW_RULE, "scope": "portfolio", "scope_portfolio": "ALPHA\x00"},
            {"scope_portfolio": ["No portfolio has the code ALPHA\x00."]},
        ),
    ],
)
def test_a_bad_rule_is_refused_naming_the_field_or_parameter(admin_user, body, errors):
    response = client_for(admin_user).post("/api/v1/alerts/rules", body, format="json")
    assert response.status_code == 400
    assert response.json() == errors
    assert not AlertRule.objects.exists() and not rule_events().exists()


def test_a_rule_name_is_unique(admin_user):
    AlertRuleFactory(name="Desk ES")
    response = client_for(admin_user).post("/api/v1/alerts/rules", NEW_RULE, format="json")
    assert response.status_code == 400 and set(response.json()) == {"name"}


def test_an_admin_changes_a_rule_and_the_change_is_audited_field_by_field(admin_user):
    rule = AlertRuleFactory(name="VaR")
    client = client_for(admin_user)
    response = client.patch(
        f"/api/v1/alerts/rules/{rule.pk}", {"enabled": False, "cooldown": "01:00:00"}, format="json"
    )
    assert response.status_code == 200
    assert (response.json()["enabled"], response.json()["cooldown"]) == (False, "01:00:00")
    rule.refresh_from_db()
    assert not rule.enabled and rule.cooldown == dt.timedelta(hours=1) and rule.updated_by == admin_user
    (event,) = rule_events()
    assert event.before == {"enabled": True, "cooldown": "0:15:00"}
    assert event.after == {"enabled": False, "cooldown": "1:00:00"}
    assert event.detail == {"change": "updated"}
    # Sending the same values again changes nothing and records nothing.
    client.patch(f"/api/v1/alerts/rules/{rule.pk}", {"enabled": False}, format="json")
    assert rule_events().count() == 1


def test_a_change_is_validated_against_the_kind(admin_user):
    rule = AlertRuleFactory(name="VaR")
    response = client_for(admin_user).patch(
        f"/api/v1/alerts/rules/{rule.pk}", {"kind": "trade_velocity"}, format="json"
    )
    assert response.status_code == 400
    messages = response.json()["parameters"]
    assert any(m.startswith("figure: not a parameter of this kind") for m in messages), messages
    assert messages == sorted(messages)  # one error per unknown name, in name order whatever the database
    rule.refresh_from_db()
    assert rule.kind == "risk_limit" and not rule_events().exists()


def test_an_analyst_may_not_change_a_rule(analyst):
    rule = AlertRuleFactory(name="VaR")
    response = client_for(analyst).patch(f"/api/v1/alerts/rules/{rule.pk}", {"enabled": False}, format="json")
    assert response.status_code == 403
    rule.refresh_from_db()
    assert rule.enabled


def test_an_admin_deletes_a_rule_without_history_and_it_is_audited(admin_user):
    rule = AlertRuleFactory(name="Unused")
    pk = rule.pk
    response = client_for(admin_user).delete(f"/api/v1/alerts/rules/{pk}")
    assert response.status_code == 204
    assert not AlertRule.objects.filter(pk=pk).exists()
    (event,) = rule_events()
    assert (event.object_id, event.object_repr, event.after, event.detail) == (
        str(pk),
        "Unused",
        None,
        {"change": "deleted"},
    )
    assert event.before["name"] == "Unused" and event.before["kind"] == "risk_limit"


@pytest.mark.parametrize("history", ["alert", "increase"])
def test_a_rule_with_history_is_not_deleted(admin_user, history):
    rule = AlertRuleFactory(name="Busy")
    if history == "alert":
        AlertFactory(rule=rule)
    else:
        LimitIncreaseFactory(rule=rule)
    response = client_for(admin_user).delete(f"/api/v1/alerts/rules/{rule.pk}")
    assert response.status_code == 409
    (message,) = response.json()["rule"]
    assert message.startswith("Rule Busy has ") and message.endswith("disable it instead.")
    assert AlertRule.objects.filter(pk=rule.pk).exists()
    assert not rule_events().exists()


# ------------------------------------------------------------------------------ dry runs


@pytest.fixture
def var_history():
    """VaR of ALPHA over 5% of gross twice (hours 1-2 and 4) in the last day, and once three days ago."""
    portfolio = PortfolioFactory(code="ALPHA")
    start = timezone.now().replace(microsecond=0) - dt.timedelta(hours=12)
    for i, var in enumerate([1000, 6000, 6000, 1000, 6000, 1000]):
        RiskSnapshotFactory(portfolio=portfolio, as_of=start + i * HOUR, var=Decimal(var))
    RiskSnapshotFactory(portfolio=portfolio, as_of=start - dt.timedelta(days=3), var=Decimal(7000))
    return start


def test_a_saved_rule_is_dry_run_over_a_range(viewer, var_history):
    rule = AlertRuleFactory(name="VaR", enabled=False)
    since = (var_history - HOUR).isoformat()
    until = (var_history + 10 * HOUR).isoformat()
    response = client_for(viewer).post(
        f"/api/v1/alerts/rules/{rule.pk}/dry-run", {"since": since, "until": until}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["rule"], body["kind"], body["count"], body["evaluations"]) == (rule.pk, "risk_limit", 2, 6)
    first, second = body["alerts"]
    assert (first["subject"], first["level"], first["count"], first["peak"]) == ("ALPHA", "hard", 2, 0.06)
    assert first["first_seen"] == (var_history + HOUR).isoformat().replace("+00:00", "Z")
    assert first["resolved_at"] == (var_history + 3 * HOUR).isoformat().replace("+00:00", "Z")
    assert second["count"] == 1
    days = {}
    for alert in body["alerts"]:
        day = alert["first_seen"][:10]
        days[day] = days.get(day, 0) + 1
    assert body["per_day"] == [{"date": day, "count": n} for day, n in sorted(days.items())]
    assert not Alert.objects.exists()  # a dry run writes nothing


def test_the_default_range_is_the_last_thirty_days(viewer, var_history):
    rule = AlertRuleFactory(name="VaR")
    body = client_for(viewer).post(f"/api/v1/alerts/rules/{rule.pk}/dry-run", {}, format="json").json()
    assert body["count"] == 3  # the episode three days ago as well
    since, until = (dt.datetime.fromisoformat(body[k]) for k in ("since", "until"))
    assert until - since == dt.timedelta(days=30)


def test_an_unsaved_rule_is_dry_run_from_its_body(analyst, var_history):
    body = {
        "kind": "risk_limit",
        "scope": "portfolio",
        "scope_portfolio": "ALPHA",
        "parameters": {"figure": "var", "hard": 0.065},
        "cooldown": "00:00:00",
    }
    response = client_for(analyst).post("/api/v1/alerts/rules/dry-run", body, format="json")
    assert response.status_code == 200, response.content
    data = response.json()
    assert (data["rule"], data["count"]) == (None, 1)  # only the 7% three days ago is above 6.5%
    assert data["per_day"] == [{"date": data["alerts"][0]["first_seen"][:10], "count": 1}]
    assert not AlertRule.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "risk_limit", "parameters": {"hard": 0.05}}, "parameters"),
        ({"kind": "trade_anomaly"}, "kind"),
        ({"kind": "trade_velocity", "scope": "portfolio"}, "scope_portfolio"),
        ({"kind": "trade_velocity", "since": "2026-06-02T00:00:00Z", "until": "2026-06-01T00:00:00Z"}, "since"),
        ({"kind": "trade_velocity", "since": "2024-01-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "since"),
        ({"kind": "trade_velocity", "since": "2026-06-01T00:00:00"}, "since"),
    ],
)
def test_a_bad_dry_run_is_refused_naming_the_field(viewer, body, field):
    response = client_for(viewer).post("/api/v1/alerts/rules/dry-run", body, format="json")
    assert response.status_code == 400
    assert field in response.json(), response.json()


def test_dry_running_an_unknown_rule_is_404(viewer):
    assert client_for(viewer).post("/api/v1/alerts/rules/999999/dry-run", {}, format="json").status_code == 404
