"""Token login, logout and the signed-in user's profile."""

from django.contrib.auth import authenticate, user_logged_in
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from apps.accounts.api import schema  # noqa: F401  (registers the Bearer scheme with drf-spectacular)
from apps.accounts.api.serializers import LoginSerializer, MeSerializer, TokenSerializer
from apps.accounts.selectors import user_profile
from apps.audit.models import AuditAction
from apps.audit.services import audit_record

ERR_LOGIN = "The username or password is not correct, or the account is disabled."

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
            400: OpenApiResponse(description=ERR_LOGIN),
            429: OpenApiResponse(description="Too many failed sign-ins or requests; see Retry-After."),
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        data = LoginSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        # authenticate() refuses inactive users and never says which part was wrong.
        user = authenticate(request._request, **data.validated_data)
        if user is None:
            raise serializers.ValidationError({"non_field_errors": [ERR_LOGIN]})
        token, created = Token.objects.get_or_create(user=user)
        if created:
            audit_record(action=AuditAction.TOKEN_CREATED, actor=user, obj=user, request=request._request)
        user_logged_in.send(sender=user.__class__, request=request._request, user=user)
        body = {"token": token.key, "token_type": "Bearer", "user": user_profile(user=user)}
        return Response(TokenSerializer(body).data)


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
