from django.contrib.auth import password_validation
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from apps.accounts.forms import ERR_EMAIL_TAKEN, ERR_USERNAME_TAKEN
from apps.accounts.models import Role, User


class LoginSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=128, trim_whitespace=False, style={"input_type": "password"})
    otp = serializers.CharField(
        max_length=32,
        required=False,
        allow_blank=True,
        help_text=(
            "Required when the user has two-factor sign-in: the six-digit code of their authenticator app, "
            "or one of their backup codes (each works once)."
        ),
    )


class CapabilitiesSerializer(serializers.Serializer):
    can_book_trades = serializers.BooleanField(help_text="May POST /api/v1/trades.")
    can_import = serializers.BooleanField(help_text="May use /api/v1/imports.")
    can_edit_instruments = serializers.BooleanField()
    can_edit_portfolios = serializers.BooleanField()
    is_admin = serializers.BooleanField()


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.EmailField(allow_blank=True)
    first_name = serializers.CharField(allow_blank=True)
    last_name = serializers.CharField(allow_blank=True)
    role = serializers.ChoiceField(choices=Role.choices, allow_null=True, help_text="None when no role is assigned.")
    display_timezone = serializers.CharField(help_text="The IANA zone pages show times in; the API answers in UTC.")
    capabilities = CapabilitiesSerializer()


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField()
    token_type = serializers.CharField(help_text='Always "Bearer": send `Authorization: Bearer <token>`.')
    user = MeSerializer()


class AuthErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField(help_text="A stable name for the refusal, e.g. two_factor_enrolment_required.")


class RegisterSerializer(serializers.Serializer):
    """A sign-up: always a Viewer (a role in the request is ignored); Django's password validators apply."""

    username = serializers.CharField(max_length=150, validators=[UnicodeUsernameValidator()])
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=128, write_only=True, trim_whitespace=False)

    def validate_username(self, value: str) -> str:
        if User.objects.filter(username__iexact=value).exists():
            raise serializers.ValidationError(ERR_USERNAME_TAKEN)
        return value

    def validate_email(self, value: str) -> str:
        value = User.objects.normalize_email(value)
        if User.objects.filter(email__iexact=value).exists():
            raise serializers.ValidationError(ERR_EMAIL_TAKEN)
        return value

    def validate(self, attrs: dict) -> dict:
        candidate = User(username=attrs["username"], email=attrs["email"])
        try:
            password_validation.validate_password(attrs["password"], candidate)
        except DjangoValidationError as error:
            raise serializers.ValidationError({"password": list(error.messages)}) from error
        return attrs
