"""The one way the other apps send an event to connected clients."""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

DESK_GROUP = "desk"
EVENT_TYPES = {"risk_update", "alert", "tick", "heartbeat"}


def publish(event_type: str, data: dict) -> None:
    """Send {"type": event_type, "data": data} to every connected client once the transaction commits."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"Unknown event type '{event_type}'.")
    event = {"type": event_type, "data": data}

    def send() -> None:
        layer = get_channel_layer()
        async_to_sync(layer.group_send)(DESK_GROUP, {"type": "stream.event", "event": event})

    transaction.on_commit(send)
