def role(request) -> dict:
    """Expose the user's role and what it allows to templates, so pages show only usable buttons."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"user_role": None, "can_book_trades": False, "can_import": False}
    return {
        "user_role": user.role,
        "can_book_trades": user.has_perm("portfolios.add_trade"),
        "can_import": user.has_perm("portfolios.import_data"),
    }
