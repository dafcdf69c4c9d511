"""Token login, logout and the signed-in user's profile."""

import math

from django.conf import settings
from django.contrib.auth import authenticate, user_logged_in, user_login_failed
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import NotFound, Throttled
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle, ScopedRateThrottle
from rest_framework.views import APIView

from apps.accounts.api import schema  # noqa: F401  (registers the Bearer scheme with drf-spectacular)
from apps.accounts.api.serializers import (
    AuthErrorSerializer,
    LoginSerializer,
    MeSerializer,
    RegisterSerializer,
    TokenSerializer,
)
from apps.accounts.selectors import user_has_two_factor, user_profile, user_two_factor_required
from apps.accounts.services import two_factor_verify, user_register
from apps.audit.models import AuditAction
from apps.audit.services import audit_record

ERR_LOGIN = "The username or password is not correct, or the account is disabled."
ERR_OTP_REQUIRED = 'This account uses two-factor sign-in: send the code of its authenticator app as "otp".'
ERR_OTP_WRONG = "That code is not right: send the code the authenticator app shows now, or an unused backup code."
ERR_OTP_WAIT = "Too many wrong codes for this account: wait before trying again."
ERR_ENROL_FIRST = (
    "Admins must use two-factor sign-in. Sign in to the RiskRadar web app once to set up an authenticator "
    'app (you are asked right after the password); then send its code here as "otp".'
)
ERR_REGISTRATION_OFF = "Not found."

AUTH_TAG = ["auth"]


class LoginView(APIView):
    """Exchange a username and password for the user's API token."""

    # A stale token in the request must not stop anyone from logging in again.
    authentication_classes: list = []
    permission_classes = [AllowAny]
    # Per address, on top of the per-username-and-address lockout (settings: AXES_*).
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login"

    @extend_schema(
        tags=AUTH_TAG,
        request=LoginSerializer,
        responses={
            200: TokenSerializer,
            400: OpenApiResponse(
                description=f"{ERR_LOGIN} Or, for an account with two-factor sign-in, `otp` is missing "
                "(code `otp_required`) or wrong (`otp_invalid`)."
            ),
            403: OpenApiResponse(AuthErrorSerializer, description=ERR_ENROL_FIRST),
            429: OpenApiResponse(description="Too many failed sign-ins, wrong codes or requests; see Retry-After."),
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        data = LoginSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        otp = data.validated_data.pop("otp", "")
        # authenticate() refuses inactive users and never says which part was wrong.
        user = authenticate(request._request, **data.validated_data)
        if user is None:
            raise serializers.ValidationError({"non_field_errors": [ERR_LOGIN]})
        if user_has_two_factor(user=user):
            self.check_code(request, user, otp)
        elif user_two_factor_required(user=user):
            audit_record(
                action=AuditAction.LOGIN_FAILED,
                obj=user,
                detail={"username": user.get_username(), "via": "api", "reason": "two-factor set-up required"},
                request=request._request,
            )
            body = {"detail": ERR_ENROL_FIRST, "code": "two_factor_enrolment_required"}
            return Response(body, status=status.HTTP_403_FORBIDDEN)
        token, created = Token.objects.get_or_create(user=user)
        if created:
            audit_record(action=AuditAction.TOKEN_CREATED, actor=user, obj=user, request=request._request)
        user_logged_in.send(sender=user.__class__, request=request._request, user=user)
        body = {"token": token.key, "token_type": "Bearer", "user": user_profile(user=user)}
        return Response(TokenSerializer(body).data)

    @staticmethod
    def check_code(request: Request, user, otp: str) -> None:
        """Refuse the sign-in unless `otp` is a good code; a wrong one is a failed sign-in (audit, lockout)."""
        if not otp:
            raise serializers.ValidationError({"otp": [ERR_OTP_REQUIRED], "code": "otp_required"})
        check = two_factor_verify(user=user, code=otp)
        if check.ok:
            return
        user_login_failed.send(sender=__name__, credentials={"username": user.get_username()}, request=request._request)
        if check.retry_at is not None:
            wait = max(1, math.ceil((check.retry_at - timezone.now()).total_seconds()))
            raise Throttled(wait=wait, detail=ERR_OTP_WAIT)
        raise serializers.ValidationError({"otp": [ERR_OTP_WRONG], "code": "otp_invalid"})


class LogoutView(APIView):
    """Delete the user's API token; every client using it must log in again."""

    permission_classes = [IsAuthenticated]

    @extend_schema(tags=AUTH_TAG, request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        deleted, _ = Token.objects.filter(user=request.user).delete()
        if deleted:
            audit_record(
                action=AuditAction.TOKEN_DELETED, actor=request.user, obj=request.user, request=request._request
            )
        # Not user_logged_out: that would close the user's browser sockets too, and only this token ends.
        audit_record(action=AuditAction.LOGOUT, actor=request.user, obj=request.user, detail={"via": "api"})
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    """The signed-in user: who they are, their role and what it allows."""

    permission_classes = [IsAuthenticated]

    @extend_schema(tags=AUTH_TAG, responses=MeSerializer)
    def get(self, request: Request) -> Response:
        return Response(MeSerializer(user_profile(user=request.user)).data)


class RegisterView(APIView):
    """Create an account: a Viewer, whatever the request says. Only when REGISTRATION_ENABLED; 404 otherwise."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [AnonRateThrottle]

    def initial(self, request, *args, **kwargs):
        if not settings.REGISTRATION_ENABLED:
            raise NotFound(ERR_REGISTRATION_OFF)
        super().initial(request, *args, **kwargs)

    @extend_schema(
        tags=AUTH_TAG,
        request=RegisterSerializer,
        responses={
            201: MeSerializer,
            400: OpenApiResponse(description="A field is missing or refused; each is named with its reasons."),
            404: OpenApiResponse(description="Registration is off (REGISTRATION_ENABLED=false, the default)."),
            429: OpenApiResponse(description="Too many requests from this address; see Retry-After."),
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        data = RegisterSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = user_register(**data.validated_data)
        return Response(MeSerializer(user_profile(user=user)).data, status=status.HTTP_201_CREATED)
