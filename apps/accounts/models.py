import zoneinfo

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models


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
