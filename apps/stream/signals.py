"""Close a user's sockets when they sign out or their account is disabled, and a token's when it is deleted."""

from django.conf import settings
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from rest_framework.authtoken.models import Token

from apps.stream.services import CLOSE_FORBIDDEN, CLOSE_UNAUTHENTICATED, token_sockets_close, user_sockets_close


@receiver(user_logged_out, dispatch_uid="stream_close_on_logout")
def close_sockets_on_logout(sender, request, user, **kwargs) -> None:
    if user is not None:
        user_sockets_close(user.pk, code=CLOSE_UNAUTHENTICATED)


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="stream_close_on_deactivation")
def close_sockets_on_deactivation(sender, instance, created, **kwargs) -> None:
    if not created and not instance.is_active:
        user_sockets_close(instance.pk, code=CLOSE_FORBIDDEN)


@receiver(post_delete, sender=Token, dispatch_uid="stream_close_on_token_deletion")
def close_sockets_on_token_deletion(sender, instance, **kwargs) -> None:
    # API logout deletes the token: its sockets go, the user's browser sessions stay.
    token_sockets_close(instance.key)
