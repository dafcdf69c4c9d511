"""Two-factor sign-in (TOTP with django-otp): setting it up, signing in with a code on the page and the API,
wrong, replayed and throttled codes, backup codes, Admins made to set it up, and turning it off."""

import datetime as dt
import re
import time

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.test import Client as DjangoClient
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from apps.accounts.api.views import ERR_ENROL_FIRST, ERR_LOGIN, ERR_OTP_REQUIRED, ERR_OTP_WRONG
from apps.accounts.models import Role
from apps.accounts.services import BACKUP_CODE_COUNT, ERR_ADMIN_KEEPS_TWO_FACTOR, two_factor_verify
from apps.accounts.signin import PENDING_KEY, PENDING_SECONDS
from apps.accounts.views import ERR_CODE, MSG_SIGN_IN_AGAIN, MSG_TWO_FACTOR_OFF
from apps.audit.models import AuditAction, AuditEvent
from tests.accounts.test_pages import assert_csp_clean
from tests.factories import PortfolioFactory, UserFactory, totp_code

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"  # what UserFactory sets
LOGIN = "/api/v1/auth/login"
ME = "/api/v1/auth/me"


def html_of(response) -> str:
    return response.content.decode()


def unthrottle(user) -> None:
    """Forget the devices' recent wrong codes, as waiting out the throttle would."""
    TOTPDevice.objects.filter(user=user).update(throttling_failure_count=0, throttling_failure_timestamp=None)
    StaticDevice.objects.filter(user=user).update(throttling_failure_count=0, throttling_failure_timestamp=None)


def password_step(client, username: str, next_url: str | None = None, password: str = PASSWORD):
    body = {"username": username, "password": password} | ({"next": next_url} if next_url else {})
    return client.post(reverse("accounts:login"), body)


def code_step(client, code: str):
    return client.post(reverse("accounts:login-code"), {"otp_token": code})


def secret_on(html: str) -> str:
    match = re.search(r'id="two-factor-secret">([A-Z2-7 ]+)</code>', html)
    assert match, "the set-up page shows the key"
    return match.group(1).replace(" ", "")


def pending_device(user) -> TOTPDevice:
    return TOTPDevice.objects.get(user=user, confirmed=False)


def backup_codes_on(html: str) -> list[str]:
    return re.findall(r'<li class="col user-select-all">([a-z2-7]{8})</li>', html)


def signed_in(client) -> bool:
    return SESSION_KEY in client.session


def api_login(username: str, otp: str | None = None, password: str = PASSWORD, ip: str = "10.0.0.5"):
    body = {"username": username, "password": password} | ({"otp": otp} if otp is not None else {})
    return APIClient().post(LOGIN, body, format="json", REMOTE_ADDR=ip)


@pytest.fixture
def carol():
    """A Viewer with an authenticator app."""
    return UserFactory(username="carol", role=Role.VIEWER, two_factor=True)


@pytest.fixture
def new_admin():
    """An Admin who has not set up two-factor sign-in yet."""
    return UserFactory(username="root", role=Role.ADMIN, two_factor=False)


# ------------------------------------------------------------------------------ the settings the rules rest on
def test_throttling_of_codes_is_on_for_both_kinds_of_device(carol):
    assert settings.OTP_TOTP_THROTTLE_FACTOR >= 1 and settings.OTP_STATIC_THROTTLE_FACTOR >= 1
    assert carol.totp_device.throttling_enabled
    assert StaticDevice.objects.create(user=carol, name="Backup codes").throttling_enabled


def test_every_factory_admin_has_an_authenticator_app_and_others_do_not():
    assert UserFactory(role=Role.ADMIN).totp_device.confirmed
    assert UserFactory(role=Role.VIEWER).totp_device is None


# ------------------------------------------------------------------------------ setting it up from the settings page
def test_a_viewer_sets_up_two_factor_sign_in_from_the_settings_page(client):
    user = UserFactory(username="vic", role=Role.VIEWER)
    client.force_login(user)
    page = html_of(client.get(reverse("accounts:settings")))
    assert 'id="two-factor-state"' in page and ">Off</span>" in page
    assert f'href="{reverse("accounts:two-factor-setup")}"' in page

    setup = client.get(reverse("accounts:two-factor-setup"))
    assert setup.status_code == 200
    html = html_of(setup)
    assert_csp_clean(html)
    assert re.search(r'<img src="data:image/svg\+xml;base64,[A-Za-z0-9+/=]+" id="two-factor-qr"', html)
    assert "<script" not in html.split('id="content"')[1].split("</main>")[0]
    device = pending_device(user)
    assert secret_on(html) == device.config_url.split("secret=")[1].split("&")[0]
    assert "issuer=RiskRadar" in device.config_url
    # Reloading the page keeps the same key: the app already scanned it.
    assert secret_on(html_of(client.get(reverse("accounts:two-factor-setup")))) == secret_on(html)

    wrong = client.post(reverse("accounts:two-factor-setup"), {"otp_token": "000000"})
    assert wrong.status_code == 200 and ERR_CODE in html_of(wrong)
    assert not TOTPDevice.objects.filter(user=user, confirmed=True).exists()
    unthrottle(user)

    confirmed = client.post(reverse("accounts:two-factor-setup"), {"otp_token": totp_code(device)})
    assert confirmed.status_code == 302 and confirmed.url == reverse("accounts:two-factor-backup-codes")
    device.refresh_from_db()
    assert device.confirmed
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id  # this session counts as verified

    codes_page = client.get(confirmed.url)
    codes = backup_codes_on(html_of(codes_page))
    assert len(codes) == BACKUP_CODE_COUNT == len(set(codes))
    assert codes_page["Cache-Control"] == "no-store"
    assert_csp_clean(html_of(codes_page))
    # Shown once: the page forgets them.
    again = client.get(confirmed.url)
    assert again.status_code == 302 and again.url == reverse("accounts:settings")
    assert set(StaticToken.objects.filter(device__user=user).values_list("token", flat=True)) == set(codes)

    page = html_of(client.get(reverse("accounts:settings")))
    assert ">On</span>" in page and "10 unused backup codes left." in page
    event = AuditEvent.objects.filter(action=AuditAction.USER_CHANGED, object_id=str(user.pk)).order_by("seq").last()
    assert event.after == {"two_factor": "authenticator app set up"} and event.actor_id == user.pk


def test_a_confirmation_code_replayed_is_refused_at_sign_in(client):
    """A code the set-up accepted cannot also sign in: each time step's code is accepted once."""
    user = UserFactory(username="vic", role=Role.VIEWER)
    client.force_login(user)
    client.get(reverse("accounts:two-factor-setup"))
    code = totp_code(pending_device(user))
    client.post(reverse("accounts:two-factor-setup"), {"otp_token": code})
    other = DjangoClient()
    password_step(other, "vic")
    assert ERR_CODE in html_of(code_step(other, code))
    assert not signed_in(other)


# ------------------------------------------------------------------------------ two-step sign-in on the page
def test_signing_in_with_two_factor_takes_the_password_then_a_code(client, carol):
    target = reverse("portfolios:list")
    first = password_step(client, "carol", next_url=target)
    assert first.status_code == 302 and first.url == reverse("accounts:login-code")
    # Not signed in yet: no page opens, and the socket and the API would see an anonymous visitor.
    assert not signed_in(client)
    assert not AuditEvent.objects.filter(action=AuditAction.LOGIN).exists()
    assert client.get(reverse("accounts:settings")).url == reverse("accounts:login-code")
    assert client.get("/api/v1/portfolios").status_code in (401, 403)

    page = client.get(reverse("accounts:login-code"))
    assert page.status_code == 200 and "carol" in html_of(page)
    assert_csp_clean(html_of(page))
    done = code_step(client, totp_code(carol.totp_device))
    assert done.status_code == 302 and done.url == target  # where they were going
    assert signed_in(client)
    assert client.session[DEVICE_ID_SESSION_KEY] == carol.totp_device.persistent_id
    assert client.get(target).status_code == 200
    assert AuditEvent.objects.filter(action=AuditAction.LOGIN, actor=carol).count() == 1


def test_a_user_without_two_factor_signs_in_with_the_password_alone(client):
    UserFactory(username="ana", role=Role.ANALYST)
    response = password_step(client, "ana")
    assert response.url == reverse("dashboard") and signed_in(client)


def test_a_wrong_code_is_a_failed_sign_in_for_the_audit_trail_and_the_lockout(client, carol):
    password_step(client, "carol")
    wrong = code_step(client, "123456" if totp_code(carol.totp_device) != "123456" else "654321")
    assert wrong.status_code == 200
    assert ERR_CODE in html_of(wrong) and "is-invalid" in html_of(wrong)
    assert not signed_in(client)
    failure = AuditEvent.objects.get(action=AuditAction.LOGIN_FAILED)
    assert failure.object_repr == "carol" and failure.detail["via"] == "page"
    assert AccessAttempt.objects.get(username="carol").failures_since_start == 1


def test_codes_are_throttled_after_a_wrong_one(client, carol):
    password_step(client, "carol")
    code_step(client, "000000")
    throttled = code_step(client, totp_code(carol.totp_device))
    assert throttled.status_code == 200
    assert re.search(r"Too many wrong codes: wait \d+ seconds", html_of(throttled))
    assert not signed_in(client)
    # Once the wait is over the right code is heard.
    TOTPDevice.objects.filter(pk=carol.totp_device.pk).update(
        throttling_failure_timestamp=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=10)
    )
    assert code_step(client, totp_code(carol.totp_device)).status_code == 302
    assert signed_in(client)


def test_the_throttle_doubles_with_each_wrong_code(carol):
    for _ in range(3):
        unthrottle_at = TOTPDevice.objects.get(pk=carol.totp_device.pk)
        if unthrottle_at.throttling_failure_timestamp:
            TOTPDevice.objects.filter(pk=carol.totp_device.pk).update(
                throttling_failure_timestamp=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
            )
        assert not two_factor_verify(user=carol, code="000000").ok
    check = two_factor_verify(user=carol, code=totp_code(carol.totp_device))
    assert not check.ok and check.retry_at is not None
    wait = (check.retry_at - dt.datetime.now(dt.UTC)).total_seconds()
    assert 2 < wait <= 4  # 1, 2, then 4 seconds after the third wrong code


def test_five_wrong_codes_lock_the_username_out_from_the_address(client, carol):
    password_step(client, "carol")
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        unthrottle(carol)
        response = code_step(client, "000000")
        expected = 429 if attempt == settings.AXES_FAILURE_LIMIT - 1 else 200
        assert response.status_code == expected
    unthrottle(carol)
    locked = code_step(client, totp_code(carol.totp_device))
    assert locked.status_code == 429 and "Too many failed sign-ins" in html_of(locked)
    assert not signed_in(client)
    # The password step is locked too, until the cool-off ends or an Admin unlocks it.
    assert password_step(DjangoClient(), "carol").status_code == 429


def test_a_replayed_code_is_refused(client, carol):
    code = totp_code(carol.totp_device)
    password_step(client, "carol")
    assert code_step(client, code).status_code == 302
    client.post(reverse("accounts:logout"))
    password_step(client, "carol")
    replay = code_step(client, code)
    assert replay.status_code == 200 and ERR_CODE in html_of(replay)
    assert not signed_in(client)


def test_a_backup_code_signs_in_once(client, carol):
    client.force_login(carol)
    client.post(reverse("accounts:two-factor-backup-codes-renew"), {"otp_token": totp_code(carol.totp_device)})
    codes = backup_codes_on(html_of(client.get(reverse("accounts:two-factor-backup-codes"))))
    client.post(reverse("accounts:logout"))

    other = DjangoClient()
    password_step(other, "carol")
    assert code_step(other, f"  {codes[0][:4].upper()}-{codes[0][4:]} ").status_code == 302  # typed loosely
    assert signed_in(other)
    assert StaticToken.objects.filter(device__user=carol).count() == BACKUP_CODE_COUNT - 1
    other.post(reverse("accounts:logout"))
    password_step(other, "carol")
    assert ERR_CODE in html_of(code_step(other, codes[0]))  # used up
    unthrottle(carol)
    assert code_step(other, codes[1]).status_code == 302


def test_the_half_sign_in_expires(client, carol):
    password_step(client, "carol")
    session = client.session
    session[PENDING_KEY] = {**session[PENDING_KEY], "at": time.time() - PENDING_SECONDS - 1}
    session.save()
    response = client.get(reverse("accounts:login-code"))
    assert response.status_code == 302 and response.url == reverse("accounts:login")
    assert MSG_SIGN_IN_AGAIN in html_of(client.get(response.url))
    assert PENDING_KEY not in client.session


def test_a_password_change_meanwhile_voids_the_half_sign_in(client, carol):
    password_step(client, "carol")
    carol.set_password("another-long-password-1")
    carol.save()
    response = code_step(client, totp_code(carol.totp_device))
    assert response.url == reverse("accounts:login") and not signed_in(client)


def test_the_code_page_without_a_password_step_goes_to_the_sign_in_page(client):
    response = client.get(reverse("accounts:login-code"))
    assert response.status_code == 302 and response.url == reverse("accounts:login")


def test_a_session_signed_in_before_two_factor_owes_its_code_on_every_page(carol):
    """A session signed in without the code (before set-up, or elsewhere) is held on the code page."""
    client = DjangoClient()
    client.force_login(carol)  # Django's own client: the session has not passed two-factor sign-in
    for url in [reverse("dashboard"), reverse("portfolios:list"), reverse("accounts:settings")]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response.url == f"{reverse('accounts:login-code')}?next={url.replace('/', '%2F')}"
    htmx = client.get(reverse("portfolios:list"), HTTP_HX_REQUEST="true")
    assert htmx.status_code == 204 and htmx["HX-Redirect"].startswith(reverse("accounts:login-code"))
    assert client.get(ME).status_code in (401, 403)  # the API refuses the session too
    response = client.post(
        reverse("accounts:login-code"), {"otp_token": totp_code(carol.totp_device), "next": "/risk/"}
    )
    assert response.url == "/risk/"
    assert client.get(reverse("accounts:settings")).status_code == 200
    assert client.get(ME).status_code == 200


# ------------------------------------------------------------------------------ Admins must set it up
def test_an_admin_without_two_factor_sets_it_up_right_after_the_password(client, new_admin):
    first = password_step(client, "root", next_url=reverse("risk:overview"))
    assert first.status_code == 302 and first.url == reverse("accounts:two-factor-setup")
    assert not signed_in(client)
    # Every page sends them back to the set-up, the admin included.
    for url in [reverse("dashboard"), reverse("portfolios:list"), reverse("accounts:settings"), "/admin/", "/audit/"]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response.url.startswith((reverse("accounts:two-factor-setup"), reverse("accounts:login"))), url
        if not url.startswith("/admin"):
            assert response.url == reverse("accounts:two-factor-setup"), url
    assert client.get(ME).status_code == 401

    setup = client.get(reverse("accounts:two-factor-setup"))
    html = html_of(setup)
    assert 'id="two-factor-required"' in html and "root" in html
    assert_csp_clean(html)
    done = client.post(reverse("accounts:two-factor-setup"), {"otp_token": totp_code(pending_device(new_admin))})
    assert done.url == reverse("accounts:two-factor-backup-codes")
    assert signed_in(client)
    codes = client.get(done.url)
    assert len(backup_codes_on(html_of(codes))) == BACKUP_CODE_COUNT
    assert f'href="{reverse("risk:overview")}" id="backup-codes-continue"' in html_of(codes)
    assert client.get(reverse("admin:index")).status_code == 200
    assert AuditEvent.objects.filter(action=AuditAction.LOGIN, actor=new_admin).count() == 1


def test_an_admin_session_without_two_factor_can_reach_nothing_but_the_set_up(new_admin):
    """A session signed in before the rule (or by force_login) is held on the set-up page."""
    client = DjangoClient()
    client.force_login(new_admin)
    PortfolioFactory(code="HELD")
    for url in [
        reverse("dashboard"),
        reverse("portfolios:list"),
        reverse("portfolios:detail", args=["HELD"]),
        reverse("risk:overview"),
        reverse("accounts:settings"),
        reverse("audit:log"),
        reverse("admin:index"),
        reverse("admin:accounts_user_changelist"),
    ]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response.url.startswith(reverse("accounts:two-factor-setup")), url
    assert client.get(ME).status_code == 401  # the API refuses the session (and there is no token)
    assert client.get(reverse("accounts:two-factor-setup")).status_code == 200
    device = pending_device(new_admin)
    client.post(reverse("accounts:two-factor-setup"), {"otp_token": totp_code(device)})
    assert client.get(reverse("admin:index")).status_code == 200


def test_the_admin_sign_in_form_is_our_sign_in_page(client):
    response = client.get("/admin/login/?next=/admin/accounts/user/")
    assert response.status_code == 302
    assert response.url == f"{reverse('accounts:login')}?next=%2Fadmin%2Faccounts%2Fuser%2F"
    assert client.post("/admin/login/", {"username": "x", "password": "y"}).url.startswith(reverse("accounts:login"))


def test_an_admin_with_two_factor_signs_in_with_a_code_and_reaches_the_admin(client):
    boss = UserFactory(username="boss", role=Role.ADMIN)
    assert password_step(client, "boss", next_url="/admin/").url == reverse("accounts:login-code")
    assert code_step(client, totp_code(boss.totp_device)).url == "/admin/"
    assert client.get("/admin/").status_code == 200


# ------------------------------------------------------------------------------ turning it off, new codes, new phone
def test_turning_two_factor_off_takes_a_code(client, carol):
    client.force_login(carol)
    wrong = client.post(reverse("accounts:two-factor-turn-off"), {"otp_token": "000000"}, follow=True)
    assert ERR_CODE in html_of(wrong)
    assert TOTPDevice.objects.filter(user=carol).exists()
    unthrottle(carol)
    done = client.post(
        reverse("accounts:two-factor-turn-off"), {"otp_token": totp_code(carol.totp_device)}, follow=True
    )
    assert MSG_TWO_FACTOR_OFF in html_of(done)
    assert not TOTPDevice.objects.filter(user=carol).exists() and not StaticDevice.objects.filter(user=carol).exists()
    client.post(reverse("accounts:logout"))
    assert password_step(client, "carol").url == reverse("dashboard")  # the password alone again


def test_an_admin_cannot_turn_two_factor_off(client):
    boss = UserFactory(username="boss", role=Role.ADMIN)
    client.force_login(boss)
    page = html_of(client.get(reverse("accounts:settings")))
    assert 'id="two-factor-turn-off-form"' not in page and 'id="two-factor-admin-note"' in page
    response = client.post(
        reverse("accounts:two-factor-turn-off"), {"otp_token": totp_code(boss.totp_device)}, follow=True
    )
    assert ERR_ADMIN_KEEPS_TWO_FACTOR in html_of(response)
    assert TOTPDevice.objects.filter(user=boss, confirmed=True).exists()


def test_new_backup_codes_replace_the_old_ones(client, carol):
    client.force_login(carol)
    client.post(reverse("accounts:two-factor-backup-codes-renew"), {"otp_token": totp_code(carol.totp_device)})
    old = backup_codes_on(html_of(client.get(reverse("accounts:two-factor-backup-codes"))))
    response = client.post(reverse("accounts:two-factor-backup-codes-renew"), {"otp_token": old[0]})
    assert response.url == reverse("accounts:two-factor-backup-codes")
    new = backup_codes_on(html_of(client.get(response.url)))
    assert len(new) == BACKUP_CODE_COUNT and not set(new) & set(old)
    assert not two_factor_verify(user=carol, code=old[1]).ok
    # The session stays verified: it is the same backup-code device.
    assert client.get(reverse("accounts:settings")).status_code == 200


def test_moving_to_a_new_phone_replaces_the_authenticator_app(client):
    boss = UserFactory(username="boss", role=Role.ADMIN)
    client.force_login(boss)
    page = client.get(reverse("accounts:two-factor-setup"))
    assert "Move to a new authenticator app" in html_of(page)
    new_device = pending_device(boss)
    assert client.post(reverse("accounts:two-factor-setup"), {"otp_token": totp_code(new_device)}).status_code == 302
    assert list(TOTPDevice.objects.filter(user=boss).values_list("pk", flat=True)) == [new_device.pk]
    assert client.get(reverse("admin:index")).status_code == 200  # verified by the new app now


# ------------------------------------------------------------------------------ the token API
def test_the_api_asks_for_the_code_of_a_user_with_two_factor(carol):
    missing = api_login("carol")
    assert missing.status_code == 400
    assert missing.json() == {"otp": [ERR_OTP_REQUIRED], "code": "otp_required"}
    assert not AuditEvent.objects.filter(action=AuditAction.LOGIN_FAILED).exists()  # not a failure: just asked
    ok = api_login("carol", otp=totp_code(carol.totp_device))
    assert ok.status_code == 200 and ok.json()["token"]
    assert AuditEvent.objects.filter(action=AuditAction.LOGIN, actor=carol).count() == 1


def test_the_api_refuses_a_wrong_code_as_a_failed_sign_in(carol):
    response = api_login("carol", otp="000000")
    assert response.status_code == 400
    assert response.json() == {"otp": [ERR_OTP_WRONG], "code": "otp_invalid"}
    failure = AuditEvent.objects.get(action=AuditAction.LOGIN_FAILED)
    assert failure.detail == {"username": "carol", "via": "api"}
    assert AccessAttempt.objects.get(username="carol").failures_since_start == 1


def test_the_api_refuses_a_wrong_password_before_any_code(carol):
    response = api_login("carol", password="wrong", otp=totp_code(carol.totp_device))
    assert response.status_code == 400 and response.json() == {"non_field_errors": [ERR_LOGIN]}


def test_the_api_refuses_a_replayed_code(carol):
    code = totp_code(carol.totp_device)
    assert api_login("carol", otp=code).status_code == 200
    assert api_login("carol", otp=code).json()["code"] == "otp_invalid"


def test_the_api_throttles_codes(carol):
    api_login("carol", otp="000000")
    throttled = api_login("carol", otp=totp_code(carol.totp_device))
    assert throttled.status_code == 429 and int(throttled["Retry-After"]) >= 1


def test_the_api_locks_out_after_five_wrong_codes(carol):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        unthrottle(carol)
        assert api_login("carol", otp="000000").status_code == 400
    unthrottle(carol)
    locked = api_login("carol", otp="000000")
    assert locked.status_code == 429 and locked.json()["code"] == "locked_out"
    unthrottle(carol)
    assert api_login("carol", otp=totp_code(carol.totp_device)).status_code == 429
    assert api_login("carol", otp=totp_code(carol.totp_device), ip="10.0.0.6").status_code == 200


def test_the_api_accepts_a_backup_code(client, carol):
    client.force_login(carol)
    client.post(reverse("accounts:two-factor-backup-codes-renew"), {"otp_token": totp_code(carol.totp_device)})
    code = backup_codes_on(html_of(client.get(reverse("accounts:two-factor-backup-codes"))))[0]
    assert api_login("carol", otp=code).status_code == 200
    assert api_login("carol", otp=code).status_code == 400


def test_the_api_tells_an_admin_without_two_factor_to_set_it_up_in_the_web_app(new_admin):
    response = api_login("root")
    assert response.status_code == 403
    assert response.json() == {"detail": ERR_ENROL_FIRST, "code": "two_factor_enrolment_required"}
    refused = AuditEvent.objects.get(action=AuditAction.LOGIN_FAILED)
    assert refused.detail["reason"] == "two-factor set-up required"
    assert not AuditEvent.objects.filter(action=AuditAction.TOKEN_CREATED).exists()


def test_the_api_logs_an_admin_in_with_a_code():
    boss = UserFactory(username="boss", role=Role.ADMIN)
    assert api_login("boss").status_code == 400
    token = api_login("boss", otp=totp_code(boss.totp_device)).json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get(ME).json()["role"] == "Admin"


# ------------------------------------------------------------------------------ who may use each page
TWO_FACTOR_PAGES = ["accounts:two-factor-setup", "accounts:two-factor-backup-codes"]


@pytest.mark.parametrize(
    ("who", "setup", "codes", "renew", "turn_off"),
    [
        # anonymous: sent to sign in
        (None, 302, 302, 302, 302),
        # no role: refused (nothing to protect yet)
        ("no-role", 403, 302, 403, 403),
        # any role: may set it up; the codes page has nothing to show unless just made; POSTs go back to settings
        (Role.VIEWER, 200, 302, 302, 302),
        (Role.ANALYST, 200, 302, 302, 302),
        (Role.ADMIN, 200, 302, 302, 302),
    ],
)
def test_two_factor_pages_by_role(client, who, setup, codes, renew, turn_off):
    if who == "no-role":
        client.force_login(UserFactory(username="nobody"))
    elif who is not None:
        client.force_login(UserFactory(username=f"{who.lower()}-user", role=who))
    assert client.get(reverse("accounts:two-factor-setup")).status_code == setup
    assert client.get(reverse("accounts:two-factor-backup-codes")).status_code == codes
    renewed = client.post(reverse("accounts:two-factor-backup-codes-renew"), {"otp_token": "000000"})
    assert renewed.status_code == renew
    off = client.post(reverse("accounts:two-factor-turn-off"), {"otp_token": "000000"})
    assert off.status_code == turn_off
    if who is None:
        assert renewed.url.startswith(reverse("accounts:login")) and off.url.startswith(reverse("accounts:login"))
    elif renew == 302:
        assert renewed.url == reverse("accounts:settings") and off.url == reverse("accounts:settings")


@pytest.mark.parametrize("who", [None, "no-role", Role.VIEWER, Role.ANALYST, Role.ADMIN])
def test_the_code_page_by_role(client, who):
    """Without a half sign-in or a session that owes a code, there is no code to give: each goes on."""
    if who == "no-role":
        client.force_login(UserFactory(username="nobody"))
    elif who is not None:
        client.force_login(UserFactory(username=f"{who.lower()}-user", role=who))
    response = client.get(reverse("accounts:login-code"))
    assert response.status_code == 302
    assert response.url == (reverse("accounts:login") if who is None else reverse("dashboard"))


@pytest.mark.parametrize("method", ["put", "delete"])
def test_two_factor_pages_take_only_get_and_post(client, carol, method):
    client.force_login(carol)
    for name in ["accounts:two-factor-setup", "accounts:login-code"]:
        assert getattr(client, method)(reverse(name)).status_code == 405
    assert client.get(reverse("accounts:two-factor-turn-off")).status_code == 405
    assert client.get(reverse("accounts:two-factor-backup-codes-renew")).status_code == 405
