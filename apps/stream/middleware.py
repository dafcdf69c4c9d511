"""The WebSocket handshake's checks: the Origin of browser pages, and API-token authentication."""

from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.security.websocket import OriginValidator
from django.conf import settings
from django.contrib.auth.models import AnonymousUser


class BrowserOriginValidator(OriginValidator):
    """Refuse a handshake whose Origin header is not one of ALLOWED_HOSTS; accept one that sends none.

    Browsers always send Origin on a WebSocket handshake, so checking it stops another site's page from
    opening a socket with a signed-in user's cookie (cross-site WebSocket hijacking). API clients and feeds
    send no Origin and sign in with a token; channels' AllowedHostsOriginValidator would refuse them.
    """

    def valid_origin(self, parsed_origin) -> bool:
        return parsed_origin is None or super().valid_origin(parsed_origin)


def origin_checked(application) -> BrowserOriginValidator:
    """Wrap the socket application in BrowserOriginValidator over ALLOWED_HOSTS (local hosts in DEBUG if empty)."""
    allowed = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed:
        allowed = ["localhost", "127.0.0.1", "[::1]"]
    return BrowserOriginValidator(application, allowed)


def token_from_scope(scope: dict) -> str | None:
    """Return the token of `Authorization: Bearer <key>`, else of `?token=<key>`, else None."""
    for name, value in scope.get("headers", []):
        if name.lower() == b"authorization":
            keyword, _, key = value.decode("latin-1").partition(" ")
            if keyword == "Bearer":
                return key.strip()
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
    return values[0] if values else None


@database_sync_to_async
def user_for_token(key: str):
    """Return the active user owning the API token `key`, or AnonymousUser."""
    from rest_framework.authtoken.models import Token

    token = Token.objects.select_related("user").filter(key=key).first()
    if token is None or not token.user.is_active:
        return AnonymousUser()
    return token.user


class TokenAuthMiddleware:
    """Authenticate a socket by API token when it presents one, overriding any session user.

    A socket that presents a token that is wrong is anonymous, even with a valid session: a client
    that meant to use a token must hear that it does not work. Browsers cannot set headers, hence
    `?token=`; note that query strings can end up in proxy and access logs, so API clients should
    prefer the header.
    """

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        key = token_from_scope(scope)
        if key is not None:
            scope = {**scope, "user": await user_for_token(key), "api_token": key}
        return await self.inner(scope, receive, send)
