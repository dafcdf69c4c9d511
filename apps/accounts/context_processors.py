from apps.accounts.selectors import NO_CAPABILITIES, user_capabilities


def role(request) -> dict:
    """Expose the user's role and what it allows to templates, so pages show only usable buttons."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"user_role": None, **NO_CAPABILITIES}
    return {"user_role": user.role, **user_capabilities(user=user)}
