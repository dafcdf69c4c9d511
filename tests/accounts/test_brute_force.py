"""Brute-force protection: a username is locked out from an address after repeated failures, on the sign-in
page and the token endpoint alike; API requests are throttled per user, per address and for sign-in."""

import pytest
from django.core.cache import cache
from django.urls import reverse
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from apps.accounts.models import Role
from apps.audit.models import AuditAction, AuditEvent
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"  # the factories' password


@pytest.fixture
def dana():
    return UserFactory(username="dana", role=Role.ANALYST)


def page_login(client, password, username="dana", ip="10.0.0.5"):
    return client.post(reverse("accounts:login"), {"username": username, "password": password}, REMOTE_ADDR=ip)


def api_login(password, username="dana", ip="10.0.0.5"):
    return APIClient().post(
        reverse("api-login"), {"username": username, "password": password}, format="json", REMOTE_ADDR=ip
    )


def test_the_sign_in_page_locks_a_username_out_from_an_address_after_five_failures(client, dana, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert page_login(client, "wrong").status_code == 200  # the form again, with its error
    locked = page_login(client, "wrong")
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.content.decode()
    assert locked["Retry-After"] == str(15 * 60)
    # Locked even with the right password, until the cool-off ends.
    assert page_login(client, PASSWORD).status_code == 429
    # Another address, or another username from this address, is not.
    assert page_login(client, PASSWORD, ip="10.0.0.6").status_code == 302
    UserFactory(username="erin", role=Role.VIEWER)
    assert page_login(client, PASSWORD, username="erin").status_code == 302


def test_the_token_endpoint_locks_out_too_and_answers_json(dana, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert api_login("wrong").status_code == 400
    locked = api_login("wrong")
    assert locked.status_code == 429
    assert locked.json()["code"] == "locked_out" and "Try again in 15 minutes" in locked.json()["detail"]
    assert api_login(PASSWORD).status_code == 429
    assert api_login(PASSWORD, ip="10.0.0.9").status_code == 200
    failures = AuditEvent.objects.filter(action=AuditAction.LOGIN_FAILED)
    assert failures.count() == settings.AXES_FAILURE_LIMIT + 1 and {e.ip for e in failures} == {"10.0.0.5"}


def test_a_success_clears_the_failure_count(client, dana, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        page_login(client, "wrong")
    assert page_login(client, PASSWORD).status_code == 302
    client.logout()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert page_login(client, "wrong").status_code == 200


@pytest.fixture
def low_rates(monkeypatch):
    """DRF reads the rates once, at import; tests lower them on the class and start from an empty cache."""
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"anon": "3/min", "user": "4/min", "login": "2/min"})
    cache.clear()
    yield
    cache.clear()


def test_sign_in_attempts_are_throttled_per_address(dana, low_rates):
    assert api_login("wrong").status_code == 400
    assert api_login(PASSWORD).status_code == 200
    throttled = api_login(PASSWORD)
    assert throttled.status_code == 429 and int(throttled["Retry-After"]) > 0
    assert api_login(PASSWORD, ip="10.0.0.7").status_code == 200


def test_api_requests_are_throttled_per_user_and_per_anonymous_address(dana, low_rates):
    client = APIClient()
    client.force_authenticate(dana)
    codes = [client.get(reverse("api-me")).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 200, 429]
    # Anonymous requests are refused (401) before any throttle counts them; an endpoint open to anyone, such
    # as the OpenAPI schema, is throttled per address. Health checks never are.
    anonymous = [APIClient().get(reverse("api-schema"), REMOTE_ADDR="10.9.9.9").status_code for _ in range(4)]
    assert anonymous == [200, 200, 200, 429]
    assert APIClient().get(reverse("api-schema"), REMOTE_ADDR="10.9.9.8").status_code == 200
    assert {APIClient().get("/api/v1/health").status_code for _ in range(5)} <= {200, 503}
