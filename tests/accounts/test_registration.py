"""Self-service sign-up, only when REGISTRATION_ENABLED: always a Viewer, Django's password validators per field,
throttled as anonymous, audited; a 404 on the page and the API when off (the default)."""

import pytest
from django.core.cache import cache
from django.urls import reverse
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from apps.accounts.forms import ERR_EMAIL_TAKEN, ERR_PASSWORDS_DIFFER, ERR_USERNAME_TAKEN
from apps.accounts.models import Role, User
from apps.accounts.views import MSG_REGISTERED
from apps.audit.models import AuditAction, AuditEvent
from tests.accounts.test_pages import assert_csp_clean
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

REGISTER = "/api/v1/auth/register"
GOOD = {"username": "newcomer", "email": "newcomer@desk.example", "password": "tangerine-orbit-42"}
PAGE_GOOD = {
    "username": "newcomer",
    "email": "newcomer@desk.example",
    "password1": "tangerine-orbit-42",
    "password2": "tangerine-orbit-42",
}


def html_of(response) -> str:
    return response.content.decode()


@pytest.fixture
def enabled(settings):
    settings.REGISTRATION_ENABLED = True


def api_register(body: dict, ip: str = "10.1.1.1"):
    return APIClient().post(REGISTER, body, format="json", REMOTE_ADDR=ip)


# ------------------------------------------------------------------------------ off by default
def test_registration_is_off_by_default(client, settings):
    assert settings.REGISTRATION_ENABLED is False
    assert client.get(reverse("accounts:register")).status_code == 404
    assert client.post(reverse("accounts:register"), PAGE_GOOD).status_code == 404
    assert api_register(GOOD).status_code == 404
    assert APIClient().get(REGISTER).status_code == 404
    assert 'id="register-link"' not in html_of(client.get(reverse("accounts:login")))
    assert not User.objects.filter(username="newcomer").exists()


# ------------------------------------------------------------------------------ the page
def test_the_login_page_links_to_sign_up_when_it_is_on(client, enabled):
    html = html_of(client.get(reverse("accounts:login")))
    assert 'id="register-link"' in html and f'href="{reverse("accounts:register")}"' in html


def test_signing_up_on_the_page_makes_a_viewer_who_can_sign_in(client, enabled):
    page = client.get(reverse("accounts:register"))
    assert page.status_code == 200
    assert_csp_clean(html_of(page))
    response = client.post(reverse("accounts:register"), PAGE_GOOD)
    assert response.status_code == 302 and response.url == reverse("accounts:login")
    assert MSG_REGISTERED in html_of(client.get(response.url))
    user = User.objects.get(username="newcomer")
    assert user.role == Role.VIEWER and user.email == "newcomer@desk.example"
    assert not user.is_staff and not user.is_superuser
    signed_in = client.post(reverse("accounts:login"), {"username": "newcomer", "password": PAGE_GOOD["password1"]})
    assert signed_in.url == reverse("dashboard")  # a Viewer needs no second step


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"password1": "password", "password2": "password"}, "password1", "This password is too common."),
        ({"password1": "x7$k", "password2": "x7$k"}, "password1", "This password is too short."),
        ({"password1": "48213957716", "password2": "48213957716"}, "password1", "This password is entirely numeric."),
        ({"password1": "newcomer-1", "password2": "newcomer-1"}, "password1", "too similar to the username"),
        ({"password2": "something-else-9"}, "password2", ERR_PASSWORDS_DIFFER),
        ({"username": "bad name!"}, "username", "Enter a valid username."),
        ({"email": "not-an-address"}, "email", "Enter a valid email address."),
        ({"username": ""}, "username", "This field is required."),
    ],
)
def test_the_page_names_each_refused_field(client, enabled, changes, field, message):
    response = client.post(reverse("accounts:register"), {**PAGE_GOOD, **changes})
    assert response.status_code == 200
    html = html_of(response)
    assert f'data-field="{field}">' in html
    assert message in html
    assert not User.objects.filter(username=PAGE_GOOD["username"]).exists()


def test_the_page_refuses_a_taken_username_or_email(client, enabled):
    UserFactory(username="Newcomer", email="someone@desk.example")
    response = client.post(reverse("accounts:register"), {**PAGE_GOOD, "email": "SOMEONE@desk.example"})
    html = html_of(response)
    assert ERR_USERNAME_TAKEN in html and ERR_EMAIL_TAKEN in html


@pytest.mark.parametrize("who", [Role.VIEWER, Role.ANALYST, Role.ADMIN])
def test_a_signed_in_user_is_sent_on_from_the_sign_up_page(client, enabled, who):
    client.force_login(UserFactory(role=who))
    response = client.get(reverse("accounts:register"))
    assert response.status_code == 302 and response.url == reverse("dashboard")


# ------------------------------------------------------------------------------ the API
def test_signing_up_over_the_api_makes_a_viewer_whatever_the_request_says(enabled):
    response = api_register({**GOOD, "role": "Admin", "is_staff": True, "is_superuser": True, "groups": [1]})
    assert response.status_code == 201
    body = response.json()
    assert body["username"] == "newcomer" and body["role"] == "Viewer"
    assert body["capabilities"]["is_admin"] is False
    user = User.objects.get(username="newcomer")
    assert user.role == Role.VIEWER and list(user.groups.values_list("name", flat=True)) == ["Viewer"]
    assert not user.is_staff and not user.is_superuser
    assert "password" not in body
    login = APIClient().post(
        "/api/v1/auth/login", {"username": "newcomer", "password": GOOD["password"]}, format="json"
    )
    assert login.status_code == 200


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"password": "password"}, "password", "This password is too common."),
        ({"password": "abc12"}, "password", "This password is too short. It must contain at least 8 characters."),
        ({"password": "48213957716"}, "password", "This password is entirely numeric."),
        ({"password": "newcomer77"}, "password", "The password is too similar to the username."),
        ({"username": "bad name!"}, "username", None),
        ({"email": "nope"}, "email", "Enter a valid email address."),
    ],
)
def test_the_api_names_each_refused_field(enabled, changes, field, message):
    response = api_register({**GOOD, **changes})
    assert response.status_code == 400
    errors = response.json()
    assert set(errors) == {field}
    if message:
        assert message in errors[field]
    assert not User.objects.filter(email=GOOD["email"]).exists()


def test_the_api_names_missing_fields_and_taken_names(enabled):
    missing = api_register({})
    assert missing.status_code == 400 and set(missing.json()) == {"username", "email", "password"}
    UserFactory(username="newcomer", email="newcomer@desk.example")
    taken = api_register(GOOD)
    assert taken.json() == {"username": [ERR_USERNAME_TAKEN], "email": [ERR_EMAIL_TAKEN]}


def test_a_sign_up_is_audited(enabled):
    api_register(GOOD)
    user = User.objects.get(username="newcomer")
    created = AuditEvent.objects.get(action=AuditAction.USER_CHANGED, object_id=str(user.pk))
    assert created.after == {"created": True, "is_active": True}
    role = AuditEvent.objects.get(action=AuditAction.ROLE_CHANGED, object_id=str(user.pk))
    assert role.before == {"roles": []} and role.after == {"roles": ["Viewer"]}
    assert created.ip == "10.1.1.1"


def test_a_bearer_token_changes_nothing_a_sign_up_is_anonymous(enabled):
    boss = UserFactory(role=Role.ADMIN)
    client = APIClient()
    client.force_authenticate(boss)
    response = client.post(REGISTER, {**GOOD, "role": "Admin"}, format="json")
    assert response.status_code == 201 and response.json()["role"] == "Viewer"


# ------------------------------------------------------------------------------ throttled as anonymous
@pytest.fixture
def low_rates(monkeypatch):
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"anon": "2/min", "user": "100/min", "login": "100/min"})
    cache.clear()
    yield
    cache.clear()


def test_sign_ups_are_throttled_per_address_on_the_api(enabled, low_rates):
    assert api_register({}).status_code == 400
    assert api_register({}).status_code == 400
    throttled = api_register(GOOD)
    assert throttled.status_code == 429 and "Retry-After" in throttled
    assert api_register(GOOD, ip="10.1.1.2").status_code == 201
    assert User.objects.filter(username="newcomer").count() == 1


def test_sign_ups_are_throttled_per_address_on_the_page(client, enabled, low_rates):
    for _ in range(2):
        assert client.post(reverse("accounts:register"), {}, REMOTE_ADDR="10.2.2.2").status_code == 200
    throttled = client.post(reverse("accounts:register"), PAGE_GOOD, REMOTE_ADDR="10.2.2.2")
    assert throttled.status_code == 429 and "Too many sign-ups from your address" in html_of(throttled)
    assert not User.objects.filter(username="newcomer").exists()
