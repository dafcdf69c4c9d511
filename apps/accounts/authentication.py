from rest_framework.authentication import SessionAuthentication, TokenAuthentication

from apps.accounts.middleware import user_is_verified
from apps.accounts.selectors import user_has_two_factor, user_two_factor_required


class BearerTokenAuthentication(TokenAuthentication):
    """Accept `Authorization: Bearer <token>`, the form API clients of the desk already send."""

    keyword = "Bearer"


class VerifiedSessionAuthentication(SessionAuthentication):
    """Accept the browser's session, unless it still owes a two-factor code (or an Admin's set-up)."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        user = result[0]
        if not user_is_verified(user) and (user_has_two_factor(user=user) or user_two_factor_required(user=user)):
            return None
        return result
