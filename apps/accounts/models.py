import zoneinfo

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.crypto import salted_hmac


def validate_timezone(value: str) -> None:
    """Reject a name that is not an IANA time zone."""
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"'{value}' is not a known time zone (use an IANA name such as Asia/Kolkata).")


class Role(models.TextChoices):
    """The three roles of the desk; each is a Group whose permissions a data migration sets."""

    ADMIN = "Admin", "Admin"
    ANALYST = "Analyst", "Analyst"
    VIEWER = "Viewer", "Viewer"


class User(AbstractUser):
    """A desk user; the role is the one role Group they belong to."""

    timezone = models.CharField(
        max_length=64,
        blank=True,
        validators=[validate_timezone],
        help_text="Time zone for displaying times; empty means the site default.",
    )
    # Part of every session's auth hash: raising it ends the user's sessions in every browser at their next
    # request (see _get_session_auth_hash), as a password change does.
    session_epoch = models.PositiveIntegerField(
        default=0, editable=False, help_text="Raised to end the user's sessions everywhere (e.g. on a role change)."
    )

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"

    @property
    def role(self) -> str | None:
        """Return the user's role name, the strongest if several are set, or None."""
        if self.is_superuser:
            return Role.ADMIN
        names = {g.name for g in self.groups.all()}
        for role in (Role.ADMIN, Role.ANALYST, Role.VIEWER):
            if role in names:
                return role.value
        return None

    @property
    def display_timezone(self) -> str:
        return self.timezone or settings.DISPLAY_TIME_ZONE

    def _get_session_auth_hash(self, secret=None) -> str:
        """Return Django's session hash of the password, with the session epoch mixed in once it is raised.

        At epoch 0 the hash is exactly Django's own, so sessions from before the epoch existed stay valid.
        """
        if not self.session_epoch:
            return super()._get_session_auth_hash(secret=secret)
        key_salt = "django.contrib.auth.models.AbstractBaseUser.get_session_auth_hash"
        value = f"{self.password}:epoch:{self.session_epoch}"
        return salted_hmac(key_salt, value, secret=secret, algorithm="sha256").hexdigest()
