"""A sign-in in progress, kept in the session between the password and the two-factor step.

A user who needs a second step (they have an authenticator app, or they are an Admin who must set one up) is not
signed in when the password is right: the session only remembers who passed the password, for a few minutes. They
are signed in (django.contrib.auth.login, then django_otp.login) once a code is verified, so until then every page,
the API and the stream socket see an anonymous visitor.
"""

import time

from django.contrib.auth import login as auth_login
from django.http import HttpRequest
from django.utils.crypto import constant_time_compare
from django_otp import login as otp_login
from django_otp.models import Device

from apps.accounts.models import User

PENDING_KEY = "accounts_sign_in_pending"
SIGNED_IN_AT_KEY = "accounts_signed_in_at"
# Time to type the code, or to install an authenticator app and set it up, after the password.
PENDING_SECONDS = 15 * 60


def pending_sign_in_start(request: HttpRequest, *, user: User, next_url: str) -> None:
    """Remember that `user` gave the right password in this session and where they were going."""
    request.session.cycle_key()  # a new session id for a session that now holds a half sign-in
    request.session[PENDING_KEY] = {
        "user_id": user.pk,
        "backend": user.backend,
        # A password or role change (session epoch) meanwhile voids the half sign-in, as it would a session.
        "hash": user.get_session_auth_hash(),
        "at": time.time(),
        "next": next_url,
    }


def pending_sign_in_user(request: HttpRequest) -> User | None:
    """Return the user half signed in on this session, or None (none, expired, disabled or changed since)."""
    pending = request.session.get(PENDING_KEY)
    if not pending:
        return None
    user = User.objects.filter(pk=pending.get("user_id"), is_active=True).first()
    fresh = time.time() - float(pending.get("at", 0)) <= PENDING_SECONDS
    if user is None or not fresh or not constant_time_compare(pending.get("hash", ""), user.get_session_auth_hash()):
        pending_sign_in_cancel(request)
        return None
    user.backend = pending["backend"]
    return user


def pending_sign_in_next(request: HttpRequest) -> str:
    return (request.session.get(PENDING_KEY) or {}).get("next", "")


def pending_sign_in_cancel(request: HttpRequest) -> None:
    request.session.pop(PENDING_KEY, None)


def pending_sign_in_finish(request: HttpRequest, *, user: User, device: Device) -> str:
    """Sign the half-signed-in user in, verified by `device`, and return where they were going."""
    next_url = pending_sign_in_next(request)
    pending_sign_in_cancel(request)
    auth_login(request, user, backend=user.backend)
    otp_login(request, device)
    return next_url
