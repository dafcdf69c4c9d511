import time
import zoneinfo
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import REDIRECT_FIELD_NAME, logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import resolve_url
from django.urls import reverse
from django.utils import timezone

from apps.accounts.selectors import user_has_two_factor, user_two_factor_required
from apps.accounts.signin import PENDING_KEY, SIGNED_IN_AT_KEY, pending_sign_in_user


class UserTimezoneMiddleware:
    """Show times in the signed-in user's time zone; storage stays UTC."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        name = user.display_timezone if user is not None and user.is_authenticated else settings.DISPLAY_TIME_ZONE
        timezone.activate(zoneinfo.ZoneInfo(name))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


MSG_SESSION_EXPIRED = "Your session has ended after {hours} hours. Sign in again to go on."


def _redirect(request: HttpRequest, url: str) -> HttpResponse:
    """Redirect; an htmx request is told to load the page whole (HX-Redirect) rather than swap it into a fragment."""
    if request.headers.get("HX-Request") == "true":
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return HttpResponseRedirect(url)


def _with_next(url: str, next_url: str) -> str:
    return f"{url}?{urlencode({REDIRECT_FIELD_NAME: next_url})}"


class SessionLifetimeMiddleware:
    """Sign a browser session out SESSION_ABSOLUTE_HOURS after it signed in, however busy it has been.

    The idle limit is Django's own (SESSION_COOKIE_AGE, renewed at every request); this one does not move.
    The sign-in time is stamped at sign-in (apps/accounts/signals.py), or here for a session that has none.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            started = request.session.get(SIGNED_IN_AT_KEY)
            now = time.time()
            if started is None:
                request.session[SIGNED_IN_AT_KEY] = now
            elif now - float(started) > settings.SESSION_ABSOLUTE_HOURS * 3600:
                logout(request)  # user_logged_out: audited, and the user's sockets are closed
                if not request.path.startswith("/api/"):
                    messages.info(request, MSG_SESSION_EXPIRED.format(hours=settings.SESSION_ABSOLUTE_HOURS))
                    return _redirect(request, _with_next(resolve_url(settings.LOGIN_URL), request.get_full_path()))
        return self.get_response(request)


class TwoFactorMiddleware:
    """Keep a user who owes a two-factor code (or, an Admin, the set-up of an authenticator app) on those pages.

    Signing in on our sign-in page asks for the code before the session is signed in (apps/accounts/signin.py);
    until then the session is anonymous, and any page sends it back to the step it owes. This also holds the
    sessions signed in some other way: those from before two-factor sign-in existed, those of a user who has
    since set it up in another browser, and the admin's own sign-in form, which is sent to ours. The API refuses
    such a session itself (VerifiedSessionAuthentication).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if path.startswith(("/api/", settings.STATIC_URL)):
            return self.get_response(request)
        if path == reverse("admin:login"):
            target = request.GET.get(REDIRECT_FIELD_NAME) or reverse("admin:index")
            return _redirect(request, _with_next(reverse("accounts:login"), target))
        user = getattr(request, "user", None)
        if user is None:
            return self.get_response(request)
        if not user.is_authenticated:
            return self._pending(request, path) or self.get_response(request)
        if user_is_verified(user):
            return self.get_response(request)
        if user_has_two_factor(user=user):
            target, allowed = "accounts:login-code", ("accounts:login-code", "accounts:logout")
        elif user_two_factor_required(user=user):
            target = "accounts:two-factor-setup"
            allowed = ("accounts:two-factor-setup", "accounts:two-factor-backup-codes", "accounts:logout")
        else:
            return self.get_response(request)
        if path in {reverse(name) for name in allowed}:
            return self.get_response(request)
        return _redirect(request, _with_next(reverse(target), request.get_full_path()))

    @staticmethod
    def _pending(request: HttpRequest, path: str) -> HttpResponse | None:
        """Send a session between password and code back to the step it owes, from any page but the sign-in ones."""
        if PENDING_KEY not in request.session:
            return None
        open_paths = ("accounts:login", "accounts:login-code", "accounts:two-factor-setup", "accounts:register")
        if path in {reverse(name) for name in open_paths}:
            return None
        user = pending_sign_in_user(request)
        if user is None:
            return None
        return _redirect(
            request, reverse("accounts:login-code" if user_has_two_factor(user=user) else "accounts:two-factor-setup")
        )


def user_is_verified(user) -> bool:
    """Return whether the session passed two-factor sign-in (OTPMiddleware sets is_verified on request.user)."""
    is_verified = getattr(user, "is_verified", None)
    return bool(is_verified and is_verified())
