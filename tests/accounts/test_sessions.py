"""Session lifetimes (idle and absolute), and sessions ended everywhere by signing out, a role change or
disabling the account: pages, the API and stream sockets alike."""

import datetime as dt
import time

import pytest
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac
from rest_framework.test import APIClient

from apps.accounts.middleware import MSG_SESSION_EXPIRED
from apps.accounts.models import Role
from apps.accounts.services import user_set_role
from apps.accounts.signin import SIGNED_IN_AT_KEY
from apps.audit.models import AuditAction, AuditEvent
from tests.conftest import Client
from tests.factories import UserFactory, totp_code

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"
ME = "/api/v1/auth/me"


def html_of(response) -> str:
    return response.content.decode()


def sign_in(username: str, device=None) -> Client:
    """Sign in through the sign-in page (and the code step when the user has two-factor sign-in)."""
    client = Client()
    response = client.post(reverse("accounts:login"), {"username": username, "password": PASSWORD})
    if device is not None:
        response = client.post(reverse("accounts:login-code"), {"otp_token": totp_code(device)})
    assert response.status_code == 302 and SESSION_KEY in client.session
    return client


def session_row(client) -> Session:
    return Session.objects.get(session_key=client.session.session_key)


def is_signed_in(client) -> bool:
    return client.get(reverse("accounts:settings")).status_code == 200


def socket_sees(client):
    """Return the user a stream socket opened with this browser's session cookie would be.

    channels' get_user does exactly django.contrib.auth.get_user on the scope's session, in a worker thread;
    here it runs in the test's own thread and transaction (on PostgreSQL another thread could not see them).
    """
    from django.contrib.auth import get_user

    class Scope:
        session = SessionStore(session_key=client.cookies["sessionid"].value)

    return get_user(Scope())


@pytest.fixture
def ana():
    return UserFactory(username="ana", role=Role.ANALYST)


# ------------------------------------------------------------------------------ settings
def test_sessions_are_idle_for_at_most_two_hours_and_live_at_most_twelve_by_default():
    assert settings.SESSION_IDLE_MINUTES == 120
    assert settings.SESSION_COOKIE_AGE == 120 * 60
    assert settings.SESSION_SAVE_EVERY_REQUEST is True  # each request renews the idle limit
    assert settings.SESSION_ABSOLUTE_HOURS == 12


def test_signing_in_stamps_the_session_and_sets_the_idle_limit_on_the_cookie(ana):
    client = Client()
    before = time.time()
    response = client.post(reverse("accounts:login"), {"username": "ana", "password": PASSWORD})
    assert before <= client.session[SIGNED_IN_AT_KEY] <= time.time()
    assert response.cookies["sessionid"]["max-age"] == settings.SESSION_COOKIE_AGE


# ------------------------------------------------------------------------------ idle
def test_an_idle_session_ends(ana):
    client = sign_in("ana")
    Session.objects.filter(session_key=client.session.session_key).update(
        expire_date=timezone.now() - dt.timedelta(seconds=1)
    )
    response = client.get(reverse("portfolios:list"))
    assert response.status_code == 302 and response.url.startswith(reverse("accounts:login"))
    assert client.get(ME).status_code in (401, 403)


def test_each_request_renews_the_idle_limit(ana):
    client = sign_in("ana")
    Session.objects.filter(session_key=client.session.session_key).update(
        expire_date=timezone.now() + dt.timedelta(minutes=1)
    )
    assert client.get(reverse("portfolios:list")).status_code == 200
    remaining = session_row(client).expire_date - timezone.now()
    assert remaining > dt.timedelta(minutes=settings.SESSION_IDLE_MINUTES - 1)


# ------------------------------------------------------------------------------ absolute
def age_session(client, hours: float) -> None:
    session = client.session
    session[SIGNED_IN_AT_KEY] = time.time() - hours * 3600
    session.save()


def test_a_session_ends_twelve_hours_after_signing_in_however_busy(ana):
    client = sign_in("ana")
    age_session(client, 11.9)
    assert client.get(reverse("portfolios:list")).status_code == 200
    age_session(client, 12.01)
    response = client.get(reverse("portfolios:list"))
    assert response.status_code == 302
    assert response.url == f"{reverse('accounts:login')}?next=%2Fportfolios%2F"
    assert SESSION_KEY not in client.session
    assert MSG_SESSION_EXPIRED.format(hours=12) in html_of(client.get(response.url))
    logout = AuditEvent.objects.filter(action=AuditAction.LOGOUT).get()
    assert logout.actor_id == ana.pk


def test_the_absolute_limit_follows_the_setting(ana, settings):
    settings.SESSION_ABSOLUTE_HOURS = 1
    client = sign_in("ana")
    age_session(client, 1.01)
    assert client.get(reverse("portfolios:list")).url.startswith(reverse("accounts:login"))


def test_an_expired_session_is_refused_by_the_api_and_htmx_is_told_to_reload(ana):
    client = sign_in("ana")
    age_session(client, 13)
    assert client.get(ME).status_code in (401, 403)
    client = sign_in("ana")
    age_session(client, 13)
    response = client.get(reverse("portfolios:list"), HTTP_HX_REQUEST="true")
    assert response.status_code == 204 and response["HX-Redirect"].startswith(reverse("accounts:login"))


def test_a_session_signed_in_before_the_stamp_existed_gets_one(ana):
    client = Client()
    client.force_login(ana)
    session = client.session
    session.pop(SIGNED_IN_AT_KEY, None)
    session.save()
    assert client.get(reverse("portfolios:list")).status_code == 200
    assert abs(client.session[SIGNED_IN_AT_KEY] - time.time()) < 60


def test_the_time_of_a_two_factor_sign_in_is_that_of_the_code(ana):
    carol = UserFactory(username="carol", role=Role.VIEWER, two_factor=True)
    client = sign_in("carol", device=carol.totp_device)
    assert abs(client.session[SIGNED_IN_AT_KEY] - time.time()) < 60


# ------------------------------------------------------------------------------ ended everywhere
def test_the_session_hash_is_djangos_own_until_sessions_are_first_ended(ana):
    """Upgrading signs no one out: at epoch 0 the hash is exactly Django's."""
    key_salt = "django.contrib.auth.models.AbstractBaseUser.get_session_auth_hash"
    django_hash = salted_hmac(key_salt, ana.password, algorithm="sha256").hexdigest()
    ana.refresh_from_db()
    ana.session_epoch = 0
    assert ana.get_session_auth_hash() == django_hash
    ana.session_epoch = 1
    assert ana.get_session_auth_hash() != django_hash


def test_a_role_change_signs_the_user_out_of_every_browser_and_socket(ana):
    first, second = sign_in("ana"), sign_in("ana")
    other = sign_in(UserFactory(username="vera", role=Role.VIEWER).username)
    assert socket_sees(first) == ana
    user_set_role(user=ana, role=Role.VIEWER)
    for client in (first, second):
        response = client.get(reverse("portfolios:list"))
        assert response.status_code == 302 and response.url.startswith(reverse("accounts:login"))
    assert not socket_sees(first).is_authenticated
    assert is_signed_in(other)  # no one else
    # Signing in again works, under the new role.
    assert sign_in("ana").get(ME).json()["role"] == "Viewer"


def test_setting_the_same_role_again_signs_no_one_out(ana):
    client = sign_in("ana")
    user_set_role(user=ana, role=Role.ANALYST)
    assert is_signed_in(client)


def test_an_admin_changing_a_role_in_the_admin_signs_that_user_out_and_not_themselves(ana):
    target = sign_in("ana")
    boss = UserFactory(username="boss", role=Role.ADMIN)
    admin = sign_in("boss", device=boss.totp_device)
    form = {
        "username": "ana",
        "role": Role.VIEWER,
        "first_name": "",
        "last_name": "",
        "email": "ana@desk.example",
        "timezone": "",
        "is_active": "on",
        "last_login_0": "",
        "last_login_1": "",
        "date_joined_0": "2024-01-01",
        "date_joined_1": "00:00:00",
    }
    response = admin.post(reverse("admin:accounts_user_change", args=[ana.pk]), form)
    assert response.status_code == 302
    assert not is_signed_in(target)
    assert is_signed_in(admin)


def test_disabling_a_user_ends_their_sessions_and_sockets(ana):
    client = sign_in("ana")
    assert socket_sees(client) == ana
    ana.is_active = False
    ana.save()
    response = client.get(reverse("portfolios:list"))
    assert response.status_code == 302 and response.url.startswith(reverse("accounts:login"))
    assert not socket_sees(client).is_authenticated
    assert client.get(ME).status_code in (401, 403)
    # and they cannot sign in again
    again = Client().post(reverse("accounts:login"), {"username": "ana", "password": PASSWORD})
    assert again.status_code == 200


def test_signing_out_ends_the_users_sessions_in_every_browser(ana):
    here, there = sign_in("ana"), sign_in("ana")
    other = sign_in(UserFactory(username="vera", role=Role.VIEWER).username)
    response = here.post(reverse("accounts:logout"))
    assert response.url == reverse("accounts:login")
    assert not is_signed_in(here)
    assert not is_signed_in(there)
    assert not socket_sees(there).is_authenticated
    assert is_signed_in(other)
    assert is_signed_in(sign_in("ana"))


def test_signing_out_of_the_api_ends_only_the_token(ana):
    browser = sign_in("ana")
    token = APIClient().post("/api/v1/auth/login", {"username": "ana", "password": PASSWORD}, format="json")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token.json()['token']}")
    assert api.post("/api/v1/auth/logout").status_code == 204
    assert is_signed_in(browser)
