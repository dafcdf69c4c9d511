from rest_framework import serializers

from apps.accounts.models import Role


class LoginSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=128, trim_whitespace=False, style={"input_type": "password"})


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
