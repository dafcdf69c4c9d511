"""API-token authentication for WebSockets, for clients without a session cookie."""

from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.contrib.auth.models import AnonymousUser


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
