"""Temporary limit increases over the API: an Analyst requests, another person (an Admin) decides, four eyes
enforced; every step is in the audit trail."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import Role
from apps.alerts.models import LimitIncrease, LimitIncreaseStatus
from apps.alerts.services import ERR_CANCEL, ERR_FOUR_EYES
from apps.audit.models import AuditAction, AuditEvent
from tests.factories import AlertRuleFactory, PortfolioFactory, UserFactory

pytestmark = pytest.mark.django_db


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def in_days(days: float) -> str:
    return (timezone.now() + dt.timedelta(days=days)).isoformat()


@pytest.fixture
def rule():
    return AlertRuleFactory(name="VaR limit")  # soft 4%, hard 5% of gross exposure


@pytest.fixture
def other_admin():
    return UserFactory(username="second-admin", role=Role.ADMIN)


def request_increase(user, limit_rule, **fields):
    body = {"rule": limit_rule.pk, "new_hard": "0.07", "reason": "Index rebalance", "expires_at": in_days(2), **fields}
    return client_for(user).post("/api/v1/alerts/limit-increases", body, format="json")


def steps(increase_id: int) -> list[str]:
    events = AuditEvent.objects.filter(action=AuditAction.LIMIT_INCREASE, object_id=str(increase_id)).order_by("seq")
    return [event.detail["step"] for event in events]


def test_an_analyst_requests_an_increase(analyst, rule):
    PortfolioFactory(code="ALPHA")
    response = request_increase(analyst, rule, new_soft="0.05", portfolio="alpha")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["status"], body["requested_by"], body["rule"], body["rule_name"], body["portfolio"]) == (
        "REQUESTED",
        "analyst",
        rule.pk,
        "VaR limit",
        "ALPHA",
    )
    assert Decimal(body["new_soft"]) == Decimal("0.05") and Decimal(body["new_hard"]) == Decimal("0.07")
    assert response["Location"].endswith(f"/api/v1/alerts/limit-increases/{body['id']}")
    event = AuditEvent.objects.get(action=AuditAction.LIMIT_INCREASE)
    assert (event.actor, event.object_id, event.before, event.detail) == (
        analyst,
        str(body["id"]),
        None,
        {"step": "requested"},
    )
    assert event.after["status"] == "REQUESTED" and Decimal(event.after["new_hard"]) == Decimal("0.07")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"new_hard": "0.04"}, "new_hard"),  # not above the current 5%
        ({"new_hard": None}, "new_hard"),  # no level at all
        ({"new_soft": "0.08"}, "new_soft"),  # soft would not stay below the hard 7%
        ({"new_hard": "NaN"}, "new_hard"),
        ({"reason": " "}, "reason"),
        ({"expires_at": in_days(45)}, "expires_at"),
        ({"expires_at": "2026-12-01T10:00:00"}, "expires_at"),
        ({"portfolio": "NOPE"}, "portfolio"),
        ({"rule": 999999}, "rule"),
    ],
)
def test_a_bad_request_is_refused_naming_the_field(analyst, rule, fields, field):
    response = request_increase(analyst, rule, **fields)
    assert response.status_code == 400
    assert field in response.json(), response.json()
    assert not LimitIncrease.objects.exists()


def test_only_limit_rules_have_levels_to_raise(analyst):
    velocity = AlertRuleFactory(kind="trade_velocity", parameters={})
    response = request_increase(analyst, velocity)
    assert response.status_code == 400 and set(response.json()) == {"rule"}


def test_another_admin_approves_and_the_requester_cannot(admin_user, other_admin, rule):
    increase_id = request_increase(admin_user, rule).json()["id"]
    own = client_for(admin_user).post(f"/api/v1/alerts/limit-increases/{increase_id}/approve", {}, format="json")
    assert own.status_code == 409
    assert own.json() == {"decided_by": [ERR_FOUR_EYES.format(action="approve")]}
    own_refusal = client_for(admin_user).post(
        f"/api/v1/alerts/limit-increases/{increase_id}/refuse", {"note": "No."}, format="json"
    )
    assert own_refusal.status_code == 409 and set(own_refusal.json()) == {"decided_by"}
    assert LimitIncrease.objects.get(pk=increase_id).status == LimitIncreaseStatus.REQUESTED
    approved = client_for(other_admin).post(
        f"/api/v1/alerts/limit-increases/{increase_id}/approve", {"note": "Fine for today."}, format="json"
    )
    assert approved.status_code == 200
    body = approved.json()
    assert (body["status"], body["decided_by"], body["decision_note"]) == (
        "APPROVED",
        "second-admin",
        "Fine for today.",
    )
    assert steps(increase_id) == ["requested", "approved"]
    event = AuditEvent.objects.filter(action=AuditAction.LIMIT_INCREASE).order_by("seq").last()
    assert (event.actor, event.before["status"], event.after["status"]) == (other_admin, "REQUESTED", "APPROVED")


def test_an_analyst_may_not_decide(analyst, rule):
    requester = UserFactory(username="requester", role=Role.ANALYST)
    increase_id = request_increase(requester, rule).json()["id"]
    client = client_for(analyst)
    assert client.post(f"/api/v1/alerts/limit-increases/{increase_id}/approve", {}).status_code == 403
    assert client.post(f"/api/v1/alerts/limit-increases/{increase_id}/refuse", {"note": "No."}).status_code == 403
    assert LimitIncrease.objects.get(pk=increase_id).status == LimitIncreaseStatus.REQUESTED


def test_a_refusal_needs_a_note_and_is_final(analyst, admin_user, rule):
    increase_id = request_increase(analyst, rule).json()["id"]
    client = client_for(admin_user)
    url = f"/api/v1/alerts/limit-increases/{increase_id}"
    missing = client.post(f"{url}/refuse", {"note": ""}, format="json")
    assert missing.status_code == 400 and set(missing.json()) == {"note"}
    refused = client.post(f"{url}/refuse", {"note": "Too large."}, format="json")
    assert refused.status_code == 200 and refused.json()["status"] == "REFUSED"
    late = client.post(f"{url}/approve", {}, format="json")
    assert late.status_code == 409
    assert late.json() == {"status": [f"Increase #{increase_id} is REFUSED; it cannot be approved."]}
    assert steps(increase_id) == ["requested", "refused"]


def test_the_requester_cancels_and_others_may_not(analyst, rule):
    increase_id = request_increase(analyst, rule).json()["id"]
    url = f"/api/v1/alerts/limit-increases/{increase_id}/cancel"
    stranger = client_for(UserFactory(username="other-analyst", role=Role.ANALYST)).post(url, {}, format="json")
    assert stranger.status_code == 403 and stranger.json() == {"detail": ERR_CANCEL}
    viewer = client_for(UserFactory(username="a-viewer", role=Role.VIEWER)).post(url, {}, format="json")
    assert viewer.status_code == 403
    cancelled = client_for(analyst).post(url, {"note": "Not needed."}, format="json")
    assert cancelled.status_code == 200
    body = cancelled.json()
    assert (body["status"], body["cancelled_by"], body["decision_note"]) == (
        "CANCELLED",
        "analyst",
        "Cancelled: Not needed.",
    )
    again = client_for(analyst).post(url, {}, format="json")
    assert again.status_code == 409 and set(again.json()) == {"status"}
    assert steps(increase_id) == ["requested", "cancelled"]


def test_an_admin_cancels_an_approved_increase(analyst, admin_user, other_admin, rule):
    increase_id = request_increase(analyst, rule).json()["id"]
    client_for(admin_user).post(f"/api/v1/alerts/limit-increases/{increase_id}/approve", {}, format="json")
    response = client_for(other_admin).post(f"/api/v1/alerts/limit-increases/{increase_id}/cancel", {}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "CANCELLED"
    assert steps(increase_id) == ["requested", "approved", "cancelled"]


def test_the_list_filters_by_status_and_requester(analyst, admin_user, rule):
    first = request_increase(analyst, rule).json()["id"]
    second = request_increase(admin_user, rule).json()["id"]
    client_for(admin_user).post(f"/api/v1/alerts/limit-increases/{first}/approve", {}, format="json")
    client = client_for(analyst)

    def listed(**query):
        return [row["id"] for row in client.get("/api/v1/alerts/limit-increases", query).json()["results"]]

    assert listed() == [second, first]
    assert listed(status="APPROVED") == [first]
    assert listed(status="REQUESTED,APPROVED") == [second, first]
    assert listed(requested_by="admin") == [second]
    assert client.get("/api/v1/alerts/limit-increases", {"status": "LOST"}).status_code == 400


@pytest.mark.parametrize("rule", ["1.5", "-2.6e272", str(2**63)])
def test_the_rule_filter_takes_only_an_id_and_names_it_otherwise(analyst, rule):
    """A number no id can be is a 400, not a server error (SQLite cannot compare it with the column)."""
    response = client_for(analyst).get("/api/v1/alerts/limit-increases", {"rule": rule})
    assert response.status_code == 400 and set(response.json()) == {"rule"}
