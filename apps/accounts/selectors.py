from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts.models import Role, User

NO_CAPABILITIES = {
    "can_book_trades": False,
    "can_import": False,
    "can_edit_instruments": False,
    "can_edit_portfolios": False,
    "is_admin": False,
}


def user_capabilities(*, user: User) -> dict[str, bool]:
    """Return what the user's role allows, as the flags pages and API clients use to show or hide actions."""
    if not user.is_authenticated:
        return dict(NO_CAPABILITIES)
    return {
        "can_book_trades": user.has_perm("portfolios.add_trade"),
        "can_import": user.has_perm("portfolios.import_data"),
        "can_edit_instruments": user.has_perm("market.change_instrument"),
        "can_edit_portfolios": user.has_perm("portfolios.change_portfolio"),
        "is_admin": user.role == Role.ADMIN,
    }


def user_profile(*, user: User) -> dict:
    """Return the signed-in user's profile as the API shows it."""
    return {
        "id": user.pk,
        "username": user.username,
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "role": user.role,
        "display_timezone": user.display_timezone,
        "capabilities": user_capabilities(user=user),
    }


def user_has_two_factor(*, user: User) -> bool:
    """Return whether the user has a confirmed authenticator app, so signing in takes a code."""
    return user.is_authenticated and TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def user_two_factor_required(*, user: User) -> bool:
    """Return whether the user may not use RiskRadar without two-factor sign-in: Admins (and superusers)."""
    return user.is_authenticated and user.role == Role.ADMIN


def user_two_factor_status(*, user: User) -> dict:
    """Return what the settings page shows of the user's two-factor sign-in."""
    return {
        "enabled": user_has_two_factor(user=user),
        "required": user_two_factor_required(user=user),
        "backup_codes_left": StaticToken.objects.filter(device__user=user, device__confirmed=True).count(),
    }


def session_two_factor_passed(*, session, user: User) -> bool:
    """Whether a browser session may act for `user`: it passed the code step (django-otp recorded the device
    in the session), or the user neither has two-factor sign-in nor owes it. For sockets, which the OTP
    middleware does not see."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.models import Device

    if not (user_has_two_factor(user=user) or user_two_factor_required(user=user)):
        return True
    persistent_id = session.get(DEVICE_ID_SESSION_KEY) if session is not None else None
    device = Device.from_persistent_id(persistent_id) if persistent_id else None
    return device is not None and device.user_id == user.pk
