import math
from base64 import b32encode

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.signals import user_login_failed
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import login as otp_login
from rest_framework.throttling import AnonRateThrottle

from apps.accounts.forms import CodeForm, RegistrationForm, UserSettingsForm
from apps.accounts.lockout import lockout_response
from apps.accounts.middleware import user_is_verified
from apps.accounts.models import Role, User
from apps.accounts.qr import qr_svg_data_uri
from apps.accounts.selectors import user_has_two_factor, user_two_factor_required, user_two_factor_status
from apps.accounts.services import (
    ERR_ADMIN_KEEPS_TWO_FACTOR,
    CodeCheck,
    two_factor_backup_codes_renew,
    two_factor_confirm,
    two_factor_remove,
    two_factor_start,
    two_factor_verify,
    user_register,
    user_sessions_end,
)
from apps.accounts.signin import (
    pending_sign_in_finish,
    pending_sign_in_next,
    pending_sign_in_start,
    pending_sign_in_user,
)

MSG_SIGNED_OUT = "You have signed out."
MSG_SETTINGS_SAVED = "Settings saved. Times are now shown in {zone}."
MSG_SIGN_IN_AGAIN = "Sign in again: the sign-in was not finished in time."
MSG_TWO_FACTOR_ON = "Two-factor sign-in is on. Keep your backup codes somewhere safe."
MSG_TWO_FACTOR_OFF = "Two-factor sign-in is off: signing in takes only your password now."
MSG_REGISTERED = "Your account is ready: sign in. It can read; an Admin can give it more."
MSG_BACKUP_CODES_GONE = "Backup codes are shown only once. Make new ones below if you have lost them."
ERR_NO_ROLE = "Your account has no role yet; ask an administrator to give you one."
ERR_CODE = "That code is not right. Enter the code your authenticator app shows now, or an unused backup code."
ERR_CODE_WAIT = "Too many wrong codes: wait {seconds} seconds, then try again."
ERR_TOO_MANY_SIGN_UPS = "Too many sign-ups from your address: wait {seconds} seconds, then try again."

BACKUP_CODES_KEY = "accounts_backup_codes"


def code_error(check: CodeCheck) -> str:
    """Return what to tell a user whose code was refused."""
    if check.retry_at is None:
        return ERR_CODE
    seconds = max(1, math.ceil((check.retry_at - timezone.now()).total_seconds()))
    return ERR_CODE_WAIT.format(seconds=seconds)


def _safe_next(request: HttpRequest, candidate: str | None) -> str:
    """Return `candidate` if it stays on this site, else the page signing in leads to."""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return resolve_url(settings.LOGIN_REDIRECT_URL)


def _two_factor_user(request: HttpRequest) -> tuple[User | None, bool]:
    """Return the user the two-factor pages act for, and whether they are between password and code."""
    if request.user.is_authenticated:
        return request.user, False
    user = pending_sign_in_user(request)
    return user, user is not None


# ------------------------------------------------------------------------------ signing in and out


class LoginView(auth_views.LoginView):
    """Sign in: the password, then a code when the user has two-factor sign-in (an Admin must set it up first)."""

    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def form_valid(self, form):
        user = form.get_user()
        has_two_factor = user_has_two_factor(user=user)
        if not has_two_factor and not user_two_factor_required(user=user):
            return super().form_valid(form)
        pending_sign_in_start(self.request, user=user, next_url=self.get_success_url())
        return redirect("accounts:login-code" if has_two_factor else "accounts:two-factor-setup")

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "registration_enabled": settings.REGISTRATION_ENABLED}


@require_http_methods(["GET", "POST"])
def login_code(request: HttpRequest) -> HttpResponse:
    """Second step of signing in: a code from the authenticator app, or a backup code.

    A wrong code is a failed sign-in: audited, and counted by django-axes towards the username's lockout.
    """
    user, pending = _two_factor_user(request)
    if user is None:
        messages.info(request, MSG_SIGN_IN_AGAIN)
        return redirect("accounts:login")
    next_url = pending_sign_in_next(request) if pending else request.POST.get("next") or request.GET.get("next")
    if not pending and user_is_verified(request.user):
        return redirect(_safe_next(request, next_url))
    if not user_has_two_factor(user=user):
        if user_two_factor_required(user=user):
            return redirect("accounts:two-factor-setup")
        return redirect(_safe_next(request, next_url) if not pending else "accounts:login")
    credentials = {"username": user.get_username()}
    if AxesProxyHandler.is_locked(request, credentials):
        return lockout_response(request, credentials=credentials)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        check = two_factor_verify(user=user, code=form.cleaned_data["otp_token"])
        if check.ok:
            if pending:
                next_url = pending_sign_in_finish(request, user=user, device=check.device)
            else:
                request.session.cycle_key()
                otp_login(request, check.device)
            return redirect(_safe_next(request, next_url))
        user_login_failed.send(sender=__name__, credentials=credentials, request=request)
        form.add_error("otp_token", code_error(check))
    context = {"form": form, "pending": pending, "next": "" if pending else next_url or "", "who": user}
    return render(request, "accounts/login_code.html", context)


class LogoutView(auth_views.LogoutView):
    """Sign out of every browser (POST only, as Django requires) and say so on the login page.

    The user's sockets everywhere are closed with 4401, "sign in again" (apps/stream/signals.py); their other
    sessions end with them, so that holds. API tokens are not touched: POST /api/v1/auth/logout ends those.
    """

    def post(self, request, *args, **kwargs):
        if request.user.is_authenticated:
            user_sessions_end(user=request.user)
        response = super().post(request, *args, **kwargs)
        messages.info(request, MSG_SIGNED_OUT)
        return response


# ------------------------------------------------------------------------------ two-factor sign-in


def _group(text: str, size: int = 4) -> str:
    return " ".join(text[i : i + size] for i in range(0, len(text), size))


@require_http_methods(["GET", "POST"])
def two_factor_setup(request: HttpRequest) -> HttpResponse:
    """Set up an authenticator app (QR code or key), confirmed with a code from it; it replaces any earlier one.

    Reached from the settings page, or right after the password by an Admin who has none yet.
    """
    user, pending = _two_factor_user(request)
    if user is None:
        return redirect_to_login(request.get_full_path())
    if user.role is None:
        raise PermissionDenied(ERR_NO_ROLE)
    if pending and user_has_two_factor(user=user):
        return redirect("accounts:login-code")
    device = two_factor_start(user=user)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            check, codes = two_factor_confirm(user=user, code=form.cleaned_data["otp_token"])
        except ValueError as error:
            messages.error(request, str(error))
            return redirect("accounts:two-factor-setup")
        if check.ok:
            if pending:
                next_url = _safe_next(request, pending_sign_in_finish(request, user=user, device=check.device))
            else:
                request.session.cycle_key()
                otp_login(request, check.device)
                next_url = reverse("accounts:settings")
            request.session[BACKUP_CODES_KEY] = {"codes": codes, "next": next_url}
            messages.success(request, MSG_TWO_FACTOR_ON)
            return redirect("accounts:two-factor-backup-codes")
        form.add_error("otp_token", code_error(check))
    context = {
        "form": form,
        "pending": pending,
        "who": user,
        "required": user_two_factor_required(user=user),
        "replacing": not pending and user_has_two_factor(user=user),
        "qr_code": qr_svg_data_uri(device.config_url),
        "secret": _group(b32encode(device.bin_key).decode("ascii")),
    }
    return render(request, "accounts/two_factor_setup.html", context)


@login_required
@require_http_methods(["GET"])
def two_factor_backup_codes(request: HttpRequest) -> HttpResponse:
    """Show newly made backup codes, once: the page forgets them as it shows them."""
    shown = request.session.pop(BACKUP_CODES_KEY, None)
    if not shown:
        messages.info(request, MSG_BACKUP_CODES_GONE)
        return redirect("accounts:settings")
    response = render(request, "accounts/two_factor_backup_codes.html", shown)
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def two_factor_backup_codes_new(request: HttpRequest) -> HttpResponse:
    """Replace the backup codes, given a current code; the old ones stop working."""
    if request.user.role is None:
        raise PermissionDenied(ERR_NO_ROLE)
    form = CodeForm(request.POST)
    if form.is_valid():
        check, codes = two_factor_backup_codes_renew(user=request.user, code=form.cleaned_data["otp_token"])
        if check.ok:
            request.session[BACKUP_CODES_KEY] = {"codes": codes, "next": reverse("accounts:settings")}
            return redirect("accounts:two-factor-backup-codes")
        messages.error(request, code_error(check))
    else:
        messages.error(request, ERR_CODE)
    return redirect("accounts:settings")


@login_required
@require_POST
def two_factor_turn_off(request: HttpRequest) -> HttpResponse:
    """Turn two-factor sign-in off, given a current code; Admins must keep it."""
    if request.user.role is None:
        raise PermissionDenied(ERR_NO_ROLE)
    if request.user.role == Role.ADMIN:
        messages.error(request, ERR_ADMIN_KEEPS_TWO_FACTOR)
        return redirect("accounts:settings")
    form = CodeForm(request.POST)
    if form.is_valid():
        check = two_factor_remove(user=request.user, code=form.cleaned_data["otp_token"])
        if check.ok:
            messages.success(request, MSG_TWO_FACTOR_OFF)
            return redirect("accounts:settings")
        messages.error(request, code_error(check))
    else:
        messages.error(request, ERR_CODE)
    return redirect("accounts:settings")


# ------------------------------------------------------------------------------ settings and sign-up


@login_required
@require_http_methods(["GET", "POST"])
def user_settings(request: HttpRequest) -> HttpResponse:
    """Show and save the signed-in user's display preferences; show their two-factor sign-in."""
    if request.user.role is None:
        raise PermissionDenied(ERR_NO_ROLE)
    form = UserSettingsForm(request.POST or None, instance=request.user)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        messages.success(request, MSG_SETTINGS_SAVED.format(zone=user.display_timezone))
        return redirect("accounts:settings")
    context = {"form": form, "two_factor": user_two_factor_status(user=request.user)}
    return render(request, "accounts/settings.html", context)


@require_http_methods(["GET", "POST"])
def register(request: HttpRequest) -> HttpResponse:
    """Sign up for a Viewer account, when REGISTRATION_ENABLED; a page that does not exist otherwise."""
    if not settings.REGISTRATION_ENABLED:
        raise Http404("Registration is off.")
    if request.user.is_authenticated:
        return redirect(settings.LOGIN_REDIRECT_URL)
    form = RegistrationForm(request.POST or None)
    if request.method == "POST":
        # Counted with the API's anonymous requests from the same address (API_THROTTLE_ANON).
        throttle = AnonRateThrottle()
        if not throttle.allow_request(request, None):
            seconds = max(1, math.ceil(throttle.wait() or 1))
            form.add_error(None, ERR_TOO_MANY_SIGN_UPS.format(seconds=seconds))
            response = render(request, "accounts/register.html", {"form": form}, status=429)
            response["Retry-After"] = str(seconds)
            return response
        if form.is_valid():
            data = form.cleaned_data
            user_register(username=data["username"], email=data["email"], password=data["password1"])
            messages.success(request, MSG_REGISTERED)
            return redirect("accounts:login")
    return render(request, "accounts/register.html", {"form": form})
