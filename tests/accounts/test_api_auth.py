"""Token login, logout and /auth/me over the API."""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.accounts.api.views import ERR_LOGIN
from apps.accounts.models import Role
from tests.factories import UserFactory, totp_code

PASSWORD = "correct-horse-battery"
LOGIN = "/api/v1/auth/login"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/auth/me"

NO_ROLE = "no-role"
# Everyone who can call the API: anonymous, a user without a role, and each role.
WHO = [None, NO_ROLE, Role.VIEWER, Role.ANALYST, Role.ADMIN]


def make_user(who: str | None, **extra):
    if who is None:
        return None
    if who == NO_ROLE:
        return UserFactory(username="norole", **extra)
    return UserFactory(username=f"{who.lower()}-user", role=who, **extra)


def login(client: APIClient, username: str, password: str = PASSWORD, otp: str | None = None):
    body = {"username": username, "password": password} | ({"otp": otp} if otp is not None else {})
    return client.post(LOGIN, body, format="json")


def login_as(user, password: str = PASSWORD):
    """Log in with the password, and the code of the user's authenticator app when they have one (Admins do)."""
    device = getattr(user, "totp_device", None)
    return login(APIClient(), user.username, password, otp=totp_code(device) if device else None)


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


# ------------------------------------------------------------------------------ permissions, one row per role
@pytest.mark.django_db
@pytest.mark.parametrize(
    ("who", "me", "logout"),
    [
        (None, 401, 401),
        (NO_ROLE, 200, 204),
        (Role.VIEWER, 200, 204),
        (Role.ANALYST, 200, 204),
        (Role.ADMIN, 200, 204),
    ],
)
def test_me_and_logout_need_a_signed_in_user(who, me, logout):
    """Login is open to everyone; /me and /logout need authentication but no particular role."""
    user = make_user(who)
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    assert client.get(ME).status_code == me
    assert client.post(LOGOUT).status_code == logout


@pytest.mark.django_db
@pytest.mark.parametrize("who", WHO[1:])
def test_every_user_can_log_in_with_their_password(who):
    user = make_user(who)
    response = login_as(user)
    assert response.status_code == 200
    assert response.json()["user"]["role"] == (None if who == NO_ROLE else who)


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_login_only_accepts_post(method):
    assert getattr(APIClient(), method)(LOGIN).status_code == 405


# ------------------------------------------------------------------------------ behaviour
@pytest.mark.django_db
def test_login_returns_a_bearer_token_that_authenticates_me():
    user = make_user(Role.ANALYST, timezone="Europe/London")
    response = login(APIClient(), user.username)

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["token"] == Token.objects.get(user=user).key
    me = bearer(body["token"]).get(ME)
    assert me.status_code == 200
    assert me.json() == {
        "id": user.pk,
        "username": "analyst-user",
        "email": "analyst-user@desk.example",
        "first_name": "",
        "last_name": "",
        "role": "Analyst",
        "display_timezone": "Europe/London",
        "capabilities": {
            "can_book_trades": True,
            "can_import": True,
            "can_edit_instruments": False,
            "can_edit_portfolios": False,
            "is_admin": False,
        },
    }


@pytest.mark.django_db
def test_logging_in_twice_gives_the_same_token_and_records_the_login():
    user = make_user(Role.VIEWER)
    first = login(APIClient(), user.username).json()["token"]
    second = login(APIClient(), user.username).json()["token"]
    assert first == second
    user.refresh_from_db()
    assert user.last_login is not None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("who", "capabilities"),
    [
        (NO_ROLE, (False, False, False, False, False)),
        (Role.VIEWER, (False, False, False, False, False)),
        (Role.ANALYST, (True, True, False, False, False)),
        (Role.ADMIN, (True, True, True, True, True)),
    ],
)
def test_me_lists_what_the_role_allows(who, capabilities):
    client = APIClient()
    client.force_authenticate(make_user(who))
    flags = client.get(ME).json()["capabilities"]
    names = ("can_book_trades", "can_import", "can_edit_instruments", "can_edit_portfolios", "is_admin")
    assert tuple(flags[name] for name in names) == capabilities


@pytest.mark.django_db
def test_me_shows_the_site_time_zone_when_the_user_has_none(settings):
    settings.DISPLAY_TIME_ZONE = "Asia/Kolkata"
    client = APIClient()
    client.force_authenticate(make_user(Role.VIEWER))
    assert client.get(ME).json()["display_timezone"] == "Asia/Kolkata"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("viewer-user", "wrong-password"),
        ("nobody", PASSWORD),
        ("VIEWER-USER", "wrong-password"),
    ],
)
def test_wrong_credentials_are_refused_without_saying_which_part_was_wrong(username, password):
    make_user(Role.VIEWER)
    response = login(APIClient(), username, password)
    assert response.status_code == 400
    assert response.json() == {"non_field_errors": [ERR_LOGIN]}
    assert not Token.objects.exists()


@pytest.mark.django_db
def test_an_inactive_user_cannot_log_in():
    user = make_user(Role.ADMIN, is_active=False)
    response = login(APIClient(), user.username)
    assert response.status_code == 400
    assert response.json() == {"non_field_errors": [ERR_LOGIN]}


@pytest.mark.django_db
def test_a_deactivated_users_token_stops_working():
    user = make_user(Role.ADMIN)
    token = login_as(user).json()["token"]
    user.is_active = False
    user.save()
    assert bearer(token).get(ME).status_code == 401


@pytest.mark.django_db
def test_login_names_missing_fields():
    response = APIClient().post(LOGIN, {"username": "someone"}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"password"}


@pytest.mark.django_db
def test_malformed_json_is_a_400():
    response = APIClient().post(LOGIN, '{"username": "x", ', content_type="application/json")
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]


@pytest.mark.django_db
def test_a_stale_token_does_not_stop_a_user_logging_in():
    user = make_user(Role.VIEWER)
    response = bearer("not-a-real-token").post(LOGIN, {"username": user.username, "password": PASSWORD})
    assert response.status_code == 200


@pytest.mark.django_db
def test_logout_deletes_the_token():
    user = make_user(Role.VIEWER)
    token = login(APIClient(), user.username).json()["token"]
    client = bearer(token)

    assert client.post(LOGOUT).status_code == 204
    assert not Token.objects.filter(user=user).exists()
    assert client.get(ME).status_code == 401
    # A new login issues a new token.
    assert login(APIClient(), user.username).json()["token"] != token


@pytest.mark.django_db
def test_anonymous_requests_are_told_to_send_a_bearer_token():
    response = APIClient().get(ME)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.django_db
def test_an_unknown_token_is_a_401():
    response = bearer("0" * 40).get(ME)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
