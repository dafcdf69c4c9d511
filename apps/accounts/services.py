import dataclasses
import datetime as dt

from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts.models import Role, User
from apps.audit.models import AuditAction
from apps.audit.services import audit_record
from apps.stream.services import user_sockets_close


@transaction.atomic
def user_set_role(*, user: User, role: str) -> User:
    """Make `role` the user's only role; Admins are staff so they can use the admin site."""
    if role not in Role.values:
        raise ValueError(f"Unknown role '{role}'; expected one of {', '.join(Role.values)}.")
    role_groups = Group.objects.filter(name__in=Role.values)
    before = sorted(user.groups.filter(name__in=Role.values).values_list("name", flat=True))
    user.groups.remove(*role_groups)
    user.groups.add(Group.objects.get(name=role))
    user.is_staff = role == Role.ADMIN or user.is_superuser
    user.save(update_fields=["is_staff"])
    # Open sockets were authorised for the old role; closing them makes clients reconnect under the new one.
    user_sockets_close(user.pk)
    if before != [role]:
        # Sessions were signed in under the old role (an Admin's also past two-factor sign-in): end them all.
        user_sessions_end(user=user)
        audit_record(action=AuditAction.ROLE_CHANGED, obj=user, before={"roles": before}, after={"roles": [role]})
    return user


def user_sessions_end(*, user: User) -> None:
    """End the user's sessions in every browser: each is refused at its next request.

    Raises the session epoch that User mixes into the session auth hash; a caller that keeps the current
    session signed in calls django.contrib.auth.update_session_auth_hash afterwards.
    """
    User.objects.filter(pk=user.pk).update(session_epoch=F("session_epoch") + 1)
    user.refresh_from_db(fields=["session_epoch"])


@transaction.atomic
def user_create(*, username: str, password: str | None, role: str, email: str = "", **extra) -> User:
    """Create a user with a role; a None password leaves the account unusable until one is set."""
    user = User(username=username, email=email, **extra)
    if password is None:
        user.set_unusable_password()
    else:
        user.set_password(password)
    user.full_clean(exclude=["password"])
    user.save()
    return user_set_role(user=user, role=role)


@transaction.atomic
def user_register(*, username: str, email: str, password: str) -> User:
    """Create an account from a sign-up. It is always a Viewer: only an Admin gives any other role."""
    return user_create(username=username, email=email, password=password, role=Role.VIEWER)


# ------------------------------------------------------------------------------ two-factor sign-in
BACKUP_CODE_COUNT = 10
AUTHENTICATOR_NAME = "Authenticator app"
ERR_ADMIN_KEEPS_TWO_FACTOR = (
    "Admins must keep two-factor sign-in. To move to a new phone, set up the new authenticator app instead."
)
ERR_NO_PENDING_AUTHENTICATOR = "Start the set-up again: there is no authenticator app waiting to be confirmed."


@dataclasses.dataclass(frozen=True)
class CodeCheck:
    """The outcome of checking a code: the device that accepted it, or when another try will be heard."""

    device: Device | None = None
    retry_at: dt.datetime | None = None  # set when no code was checked: too many wrong ones lately

    @property
    def ok(self) -> bool:
        return self.device is not None


def _normalise_code(code: str) -> str:
    return "".join(code.split()).replace("-", "").lower()


def _verify_on(devices: list[Device], code: str) -> CodeCheck:
    """Check `code` on the devices, which the caller holds locked; each wrong try doubles that device's wait."""
    waits = []
    for device in devices:
        allowed, info = device.verify_is_allowed()
        if not allowed:
            waits.append((info or {}).get("locked_until"))
            continue
        if device.verify_token(code):
            return CodeCheck(device=device)
    if waits and len(waits) == len(devices):  # no device heard the code
        known = [w for w in waits if w is not None]
        return CodeCheck(retry_at=min(known) if known else timezone.now())
    return CodeCheck()


def two_factor_verify(*, user: User, code: str) -> CodeCheck:
    """Check a sign-in code: six digits from the authenticator app, or one of the backup codes (used up).

    django-otp throttles each device (OTP_TOTP_THROTTLE_FACTOR, OTP_STATIC_THROTTLE_FACTOR): after n wrong codes
    in a row it hears none for 2^(n-1) seconds, even a right one. An app code is accepted once: a replayed one,
    or any code older than the last accepted one, is refused.
    """
    code = _normalise_code(code)
    if not code:
        return CodeCheck()
    model = TOTPDevice if code.isdigit() and len(code) <= 8 else StaticDevice
    with transaction.atomic():
        devices = list(model.objects.select_for_update().filter(user=user, confirmed=True).order_by("pk"))
        return _verify_on(devices, code)


def two_factor_start(*, user: User) -> TOTPDevice:
    """Return the user's authenticator app waiting to be confirmed, creating it (with a new secret) if none is."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=AUTHENTICATOR_NAME, confirmed=False)
    return device


def _backup_codes_replace(*, user: User) -> list[str]:
    """Give the user a fresh set of backup codes on their one backup-code device and return them."""
    device = StaticDevice.objects.filter(user=user).order_by("pk").first()
    if device is None:
        device = StaticDevice.objects.create(user=user, name="Backup codes", confirmed=True)
    StaticDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
    device.token_set.all().delete()
    codes: list[str] = []
    while len(codes) < BACKUP_CODE_COUNT:
        code = StaticToken.random_token()
        if not code.isdigit():  # an all-digit code would be read as an authenticator app's code
            codes.append(code)
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    if not device.confirmed:
        device.confirmed = True
        device.save(update_fields=["confirmed"])
    return codes


def two_factor_confirm(*, user: User, code: str) -> tuple[CodeCheck, list[str]]:
    """Confirm the waiting authenticator app with a code from it; it replaces any earlier one.

    Return the check and, when it passed, the new backup codes (shown once; every earlier one stops working).
    """
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=False).order_by("-pk").first()
        if device is None:
            raise ValueError(ERR_NO_PENDING_AUTHENTICATOR)
        check = _verify_on([device], _normalise_code(code))
    # A wrong code is kept (the device's throttle counts it) whatever happens next, so confirm in a new transaction.
    if not check.ok:
        return check, []
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        codes = _backup_codes_replace(user=user)
        audit_record(
            action=AuditAction.USER_CHANGED, actor=user, obj=user, after={"two_factor": "authenticator app set up"}
        )
    return CodeCheck(device=device), codes


def two_factor_backup_codes_renew(*, user: User, code: str) -> tuple[CodeCheck, list[str]]:
    """Replace the user's backup codes, given a current code; return the check and the new codes."""
    check = two_factor_verify(user=user, code=code)
    if not check.ok:
        return check, []
    with transaction.atomic():
        codes = _backup_codes_replace(user=user)
        audit_record(action=AuditAction.USER_CHANGED, actor=user, obj=user, after={"two_factor": "new backup codes"})
    return check, codes


def two_factor_remove(*, user: User, code: str) -> CodeCheck:
    """Turn two-factor sign-in off, given a current code; Admins may not."""
    if user.role == Role.ADMIN:
        raise ValueError(ERR_ADMIN_KEEPS_TWO_FACTOR)
    check = two_factor_verify(user=user, code=code)
    if check.ok:
        with transaction.atomic():
            TOTPDevice.objects.filter(user=user).delete()
            StaticDevice.objects.filter(user=user).delete()
            audit_record(action=AuditAction.USER_CHANGED, actor=user, obj=user, after={"two_factor": "turned off"})
    return check
