import zoneinfo

from django import forms
from django.conf import settings

from apps.accounts.models import User


def _timezone_choices() -> list[tuple[str, str]]:
    default = settings.DISPLAY_TIME_ZONE
    names = sorted(zoneinfo.available_timezones() - {"Factory", "localtime"})
    return [("", f"Site default ({default})"), *((name, name.replace("_", " ")) for name in names)]


class UserSettingsForm(forms.ModelForm):
    """A user's own display preferences."""

    timezone = forms.ChoiceField(
        choices=_timezone_choices,
        required=False,
        label="Display time zone",
        help_text="Times on every page are shown in this zone; they are stored in UTC.",
    )

    class Meta:
        model = User
        fields = ["timezone"]
