from rest_framework.authentication import TokenAuthentication


class BearerTokenAuthentication(TokenAuthentication):
    """Accept `Authorization: Bearer <token>`, the form API clients of the desk already send."""

    keyword = "Bearer"
