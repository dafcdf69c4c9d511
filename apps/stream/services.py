"""Writes of the stream app: closing a user's sockets when their access changes."""

from django.db import transaction

from apps.stream.publish import group_send_quietly, token_group, user_group

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403


def user_sockets_close(user_id: int, *, code: int = CLOSE_FORBIDDEN) -> None:
    """Close every open socket of the user with `code` once the transaction commits.

    4403 (role changed or account disabled) tells a client to reconnect, which authenticates it afresh;
    4401 (signed out) tells it to sign in again.
    """

    def send() -> None:
        group_send_quietly(user_group(user_id), {"type": "stream.close", "code": code})

    transaction.on_commit(send)


def token_sockets_close(key: str) -> None:
    """Close the sockets signed in with the API token `key` with 4401 once the transaction commits."""

    def send() -> None:
        group_send_quietly(token_group(key), {"type": "stream.close", "code": CLOSE_UNAUTHENTICATED})

    transaction.on_commit(send)
