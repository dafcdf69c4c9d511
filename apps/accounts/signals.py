"""Stamp each browser sign-in with its time, from which the session's absolute lifetime runs."""

import time

from django.contrib.auth import SESSION_KEY
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from apps.accounts.signin import SIGNED_IN_AT_KEY


@receiver(user_logged_in, dispatch_uid="accounts_stamp_sign_in")
def stamp_sign_in(sender, request, user, **kwargs) -> None:
    session = getattr(request, "session", None)
    # A token sign-in over the API starts no session; only a browser's sign-in (the session now holds the user) does.
    if session is not None and session.get(SESSION_KEY) == str(user.pk) and not request.path.startswith("/api/"):
        session[SIGNED_IN_AT_KEY] = time.time()
