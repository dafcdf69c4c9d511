import zoneinfo

from django import forms
from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError

from apps.accounts.models import User

ERR_USERNAME_TAKEN = "That username is taken; choose another."
ERR_EMAIL_TAKEN = "An account with this e-mail address already exists; sign in, or ask an Admin."
ERR_PASSWORDS_DIFFER = "The two passwords differ."


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


class CodeForm(forms.Form):
    """A code from the authenticator app, or a backup code."""

    otp_token = forms.CharField(
        label="Code",
        max_length=32,
        strip=True,
        help_text="The six digits your authenticator app shows now, or one of your backup codes.",
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "text",
                "autocapitalize": "none",
                "spellcheck": "false",
            }
        ),
    )


class RegistrationForm(forms.Form):
    """Sign up for a Viewer account; Django's password validators apply."""

    username = forms.CharField(
        max_length=150,
        validators=[UnicodeUsernameValidator()],
        help_text="Letters, digits and @ . + - _ only; at most 150 characters.",
    )
    email = forms.EmailField(label="E-mail address", max_length=254)
    password1 = forms.CharField(label="Password", strip=False, widget=forms.PasswordInput)
    password2 = forms.CharField(label="Password again", strip=False, widget=forms.PasswordInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["password1"].help_text = " ".join(password_validation.password_validators_help_texts())

    def clean_username(self) -> str:
        username = self.cleaned_data["username"]
        if User.objects.filter(username__iexact=username).exists():
            raise ValidationError(ERR_USERNAME_TAKEN)
        return username

    def clean_email(self) -> str:
        email = User.objects.normalize_email(self.cleaned_data["email"])
        if User.objects.filter(email__iexact=email).exists():
            raise ValidationError(ERR_EMAIL_TAKEN)
        return email

    def clean(self) -> dict:
        data = super().clean()
        password = data.get("password1")
        if password and data.get("password2") is not None and password != data["password2"]:
            self.add_error("password2", ERR_PASSWORDS_DIFFER)
        elif password:
            candidate = User(username=data.get("username", ""), email=data.get("email", ""))
            try:
                password_validation.validate_password(password, candidate)
            except ValidationError as error:
                self.add_error("password1", error)
        return data
