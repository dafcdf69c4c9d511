"""Writes of the stream app: closing a user's sockets when their access changes."""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from apps.stream.publish import token_group, user_group

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403


def user_sockets_close(user_id: int, *, code: int = CLOSE_FORBIDDEN) -> None:
    """Close every open socket of the user with `code` once the transaction commits.

    4403 (role changed or account disabled) tells a client to reconnect, which authenticates it afresh;
    4401 (signed out) tells it to sign in again.
    """

    def send() -> None:
        async_to_sync(get_channel_layer().group_send)(user_group(user_id), {"type": "stream.close", "code": code})

    transaction.on_commit(send)


def token_sockets_close(key: str) -> None:
    """Close the sockets signed in with the API token `key` with 4401 once the transaction commits."""

    def send() -> None:
        message = {"type": "stream.close", "code": CLOSE_UNAUTHENTICATED}
        async_to_sync(get_channel_layer().group_send)(token_group(key), message)

    transaction.on_commit(send)
