"""Who may use each alerts endpoint (and the pre-trade check): one table, every endpoint x anonymous, a user
without a role, Viewer, Analyst and Admin."""

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import Role
from apps.alerts.models import Alert, AlertRule, LimitIncrease
from tests.factories import AlertFactory, AlertRuleFactory, LimitIncreaseFactory, UserFactory
from tests.risk.synthetic import desk_create

pytestmark = pytest.mark.django_db

NO_ROLE = "no-role"
WHO = [None, NO_ROLE, Role.VIEWER, Role.ANALYST, Role.ADMIN]
EVERY_ROLE = (Role.VIEWER, Role.ANALYST, Role.ADMIN)
ANALYSTS = (Role.ANALYST, Role.ADMIN)
ADMINS = (Role.ADMIN,)
LATER = "2099-01-01T00:00:00Z"  # replaced by a time within 30 days at request time
NEW_RULE = {
    "name": "New VaR limit",
    "kind": "risk_limit",
    "parameters": {"figure": "var", "soft": 0.04, "hard": 0.05},
    "severity": "HIGH",
}
FULL_RULE = {**NEW_RULE, "name": "Renamed", "scope": "all", "cooldown": "00:30:00", "enabled": True}

# (method, url, body, status when allowed, roles allowed); None: the method does not exist (405 when signed in).
ENDPOINTS = [
    ("get", "/api/v1/alerts", None, 200, EVERY_ROLE),
    ("get", "/api/v1/alerts/{alert}", None, 200, EVERY_ROLE),
    ("post", "/api/v1/alerts", {}, 405, None),
    ("patch", "/api/v1/alerts/{alert}", {"status": "RESOLVED"}, 405, None),
    ("delete", "/api/v1/alerts/{alert}", None, 405, None),
    ("post", "/api/v1/alerts/{alert}/acknowledge", {}, 200, ANALYSTS),
    ("get", "/api/v1/alerts/{alert}/acknowledge", None, 405, None),
    ("post", "/api/v1/alerts/{alert}/resolve", {"disposition": "TRUE_POSITIVE", "note": "Real."}, 200, ANALYSTS),
    ("post", "/api/v1/alerts/acknowledge", {"ids": ["{alert}"]}, 200, ANALYSTS),
    ("get", "/api/v1/alerts/stats", None, 200, EVERY_ROLE),
    ("get", "/api/v1/alerts/rules", None, 200, EVERY_ROLE),
    ("get", "/api/v1/alerts/rules/{rule}", None, 200, EVERY_ROLE),
    ("post", "/api/v1/alerts/rules", NEW_RULE, 201, ADMINS),
    ("put", "/api/v1/alerts/rules/{rule}", FULL_RULE, 200, ADMINS),
    ("patch", "/api/v1/alerts/rules/{rule}", {"enabled": False}, 200, ADMINS),
    ("delete", "/api/v1/alerts/rules/{spare_rule}", None, 204, ADMINS),
    ("post", "/api/v1/alerts/rules/{rule}/dry-run", {}, 200, EVERY_ROLE),
    ("post", "/api/v1/alerts/rules/dry-run", {"kind": "trade_velocity"}, 200, EVERY_ROLE),
    ("get", "/api/v1/alerts/limit-increases", None, 200, EVERY_ROLE),
    ("get", "/api/v1/alerts/limit-increases/{increase}", None, 200, EVERY_ROLE),
    (
        "post",
        "/api/v1/alerts/limit-increases",
        {"rule": "{rule}", "new_hard": "0.07", "reason": "Rebalance", "expires_at": LATER},
        201,
        ANALYSTS,
    ),
    ("delete", "/api/v1/alerts/limit-increases/{increase}", None, 405, None),
    ("post", "/api/v1/alerts/limit-increases/{increase}/approve", {}, 200, ADMINS),
    ("post", "/api/v1/alerts/limit-increases/{increase}/refuse", {"note": "Too large."}, 200, ADMINS),
    # Only its requester (another Analyst here) or someone who may approve increases cancels one.
    ("post", "/api/v1/alerts/limit-increases/{increase}/cancel", {}, 200, ADMINS),
    (
        "post",
        "/api/v1/trades/check",
        {"portfolio": "DESK", "symbol": "RELI", "side": "BUY", "quantity": "1"},
        200,
        EVERY_ROLE,
    ),
    ("get", "/api/v1/trades/check", None, 405, None),
]


def expected_status(who, allowed_status: int, allowed_roles) -> int:
    if who is None:
        return 401
    if allowed_roles is None:
        return 405
    if who == NO_ROLE or who not in allowed_roles:
        return 403
    return allowed_status


@pytest.fixture
def objects():
    rule = AlertRuleFactory(name="Desk VaR")
    alert = AlertFactory(rule=rule)
    spare = AlertRuleFactory(name="Unused")
    requester = UserFactory(username="requester", role=Role.ANALYST)
    increase = LimitIncreaseFactory(rule=rule, requested_by=requester)
    return {"alert": alert.pk, "rule": rule.pk, "spare_rule": spare.pk, "increase": increase.pk}


def fill(value, objects: dict):
    if isinstance(value, str):
        if value == LATER:
            return (timezone.now() + dt.timedelta(days=2)).isoformat()
        text = value.format(**objects)
        return int(text) if value.startswith("{") and text.isdigit() else text
    if isinstance(value, dict):
        return {key: fill(item, objects) for key, item in value.items()}
    if isinstance(value, list):
        return [fill(item, objects) for item in value]
    return value


def client_for(who) -> APIClient:
    client = APIClient()
    if who == NO_ROLE:
        client.force_authenticate(UserFactory(username="norole"))
    elif who is not None:
        client.force_authenticate(UserFactory(username=f"{who.lower()}-user", role=who))
    return client


def state(objects: dict) -> tuple:
    """What a refused request must leave as it was."""
    alert = Alert.objects.get(pk=objects["alert"])
    rule = AlertRule.objects.get(pk=objects["rule"])
    increase = LimitIncrease.objects.get(pk=objects["increase"])
    return (
        alert.status,
        rule.name,
        rule.enabled,
        increase.status,
        AlertRule.objects.count(),
        LimitIncrease.objects.count(),
    )


@pytest.mark.parametrize("who", WHO, ids=lambda w: str(w))
@pytest.mark.parametrize(
    ("method", "url", "body", "allowed_status", "allowed_roles"),
    ENDPOINTS,
    ids=[f"{m.upper()} {u}" for m, u, *_ in ENDPOINTS],
)
def test_each_endpoint_answers_each_role(objects, who, method, url, body, allowed_status, allowed_roles):
    if url.startswith("/api/v1/trades"):
        desk_create()  # a portfolio with price history, for the VaR before and after
    before = state(objects)
    response = getattr(client_for(who), method)(url.format(**objects), fill(body, objects), format="json")
    expected = expected_status(who, allowed_status, allowed_roles)
    assert response.status_code == expected, response.content[:500]
    if expected >= 400:
        assert state(objects) == before
