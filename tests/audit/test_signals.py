"""Sign-ins, failed sign-ins, sign-outs and API tokens are recorded with who, from where and how."""

import pytest
from django.urls import reverse

from apps.audit.models import AuditAction, AuditEvent
from apps.audit.services import audit_verify
from tests.factories import UserFactory

PASSWORD = "correct horse battery staple"
UA = "Mozilla/5.0 (RiskRadar test)"


@pytest.fixture
def user(db):
    return UserFactory(username="dana", password=PASSWORD)


ACCOUNT_CHANGES = [AuditAction.USER_CHANGED, AuditAction.ROLE_CHANGED]  # making the test users


def actions() -> list[str]:
    events = AuditEvent.objects.exclude(action__in=ACCOUNT_CHANGES).order_by("seq")
    return list(events.values_list("action", flat=True))


def test_page_sign_in_and_out_are_recorded_with_address_and_browser(client, user):
    client.post(reverse("accounts:login"), {"username": "dana", "password": PASSWORD}, HTTP_USER_AGENT=UA)
    client.post(reverse("accounts:logout"), HTTP_USER_AGENT=UA)
    assert actions() == [AuditAction.LOGIN, AuditAction.LOGOUT]
    login = AuditEvent.objects.get(action=AuditAction.LOGIN)
    assert (login.actor_id, login.actor_name, login.ip, login.user_agent) == (user.pk, "dana", "127.0.0.1", UA)
    assert login.detail == {"via": "page"}
    assert audit_verify().ok


def test_a_failed_sign_in_keeps_the_username_and_never_the_password(client, user):
    client.post(reverse("accounts:login"), {"username": "dana", "password": "wrong"})
    event = AuditEvent.objects.get(action=AuditAction.LOGIN_FAILED)
    assert event.actor_id is None
    assert event.detail == {"username": "dana", "via": "page"}
    assert "wrong" not in str(event.detail) + event.object_repr


def test_api_login_creates_a_token_once_and_logout_deletes_it(api_client, user):
    url = reverse("api-login")
    api_client.post(url, {"username": "dana", "password": PASSWORD}, format="json")
    token = api_client.post(url, {"username": "dana", "password": PASSWORD}, format="json").json()["token"]
    api_client.post(url, {"username": "dana", "password": "nope"}, format="json")
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api_client.post(reverse("api-logout")).status_code == 204
    assert actions() == [
        AuditAction.TOKEN_CREATED,
        AuditAction.LOGIN,
        AuditAction.LOGIN,
        AuditAction.LOGIN_FAILED,
        AuditAction.TOKEN_DELETED,
        AuditAction.LOGOUT,
    ]
    signed_in = AuditEvent.objects.exclude(action__in=[AuditAction.LOGIN_FAILED, *ACCOUNT_CHANGES])
    assert set(signed_in.values_list("actor_name", flat=True)) == {"dana"}
    assert AuditEvent.objects.filter(action=AuditAction.LOGIN).first().detail == {"via": "api"}


def test_the_client_address_is_read_behind_the_configured_proxies(client, user, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    client.post(
        reverse("accounts:login"),
        {"username": "dana", "password": PASSWORD},
        HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9",
        REMOTE_ADDR="10.0.0.2",
    )
    # The proxy appended the address it saw; the left part is whatever the client sent.
    assert AuditEvent.objects.get(action=AuditAction.LOGIN).ip == "203.0.113.9"
    settings.TRUSTED_PROXY_COUNT = 0
    client.post(reverse("accounts:logout"), HTTP_X_FORWARDED_FOR="6.6.6.6", REMOTE_ADDR="10.0.0.2")
    assert AuditEvent.objects.get(action=AuditAction.LOGOUT).ip == "10.0.0.2"


def test_role_changes_and_disabling_a_user_are_recorded_with_the_admin_who_did_it(db):
    from apps.accounts.models import Role
    from apps.accounts.services import user_set_role
    from apps.audit.context import _request

    admin = UserFactory(username="root", role=Role.ADMIN)
    dana = UserFactory(username="dana", role=Role.VIEWER)

    class FakeRequest:  # the request an admin page would be serving
        user = admin
        META = {"REMOTE_ADDR": "10.1.1.1", "HTTP_USER_AGENT": "admin-console"}

    token = _request.set(FakeRequest())
    try:
        user_set_role(user=dana, role=Role.ANALYST)
        dana.is_active = False
        dana.save()
    finally:
        _request.reset(token)
    role = AuditEvent.objects.filter(action=AuditAction.ROLE_CHANGED, object_id=str(dana.pk)).first()
    assert (role.before, role.after, role.actor_name, role.ip) == (
        {"roles": ["Viewer"]},
        {"roles": ["Analyst"]},
        "root",
        "10.1.1.1",
    )
    disabled = AuditEvent.objects.filter(action=AuditAction.USER_CHANGED, object_id=str(dana.pk)).first()
    assert disabled.before == {"is_active": True} and disabled.after == {"is_active": False}
    assert audit_verify().ok
