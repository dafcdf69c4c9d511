"""OpenAPI description of how the API authenticates, so Swagger UI's Authorize button sends `Bearer <token>`."""

from drf_spectacular.authentication import SessionScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "apps.accounts.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A token from POST /api/v1/auth/login, sent as `Authorization: Bearer <token>`.",
        }


class VerifiedSessionScheme(SessionScheme):
    """The browser's session cookie, as drf-spectacular describes Django's (cookieAuth)."""

    target_class = "apps.accounts.authentication.VerifiedSessionAuthentication"
