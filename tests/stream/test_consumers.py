import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import transaction

from apps.accounts.models import Role
from apps.stream.consumers import CLOSE_UNAUTHENTICATED, RiskStreamConsumer
from apps.stream.publish import publish
from tests.factories import UserFactory


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_anonymous_socket_is_closed_with_a_clear_code():
    from django.contrib.auth.models import AnonymousUser

    communicator = WebsocketCommunicator(RiskStreamConsumer.as_asgi(), "/ws/risk-stream")
    communicator.scope["user"] = AnonymousUser()
    connected, _ = await communicator.connect()
    assert connected
    closing = await communicator.receive_output(timeout=2)
    assert closing == {"type": "websocket.close", "code": CLOSE_UNAUTHENTICATED}
    await communicator.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_signed_in_socket_receives_published_events_after_commit():
    user = await database_sync_to_async(UserFactory)(role=Role.VIEWER)
    communicator = WebsocketCommunicator(RiskStreamConsumer.as_asgi(), "/ws/risk-stream")
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    assert connected

    def publish_in_transaction():
        with transaction.atomic():
            publish("tick", {"symbol": "RELIANCE", "price": "2900.5"})

    await database_sync_to_async(publish_in_transaction)()
    assert await communicator.receive_json_from(timeout=2) == {
        "type": "tick",
        "data": {"symbol": "RELIANCE", "price": "2900.5"},
    }
    await communicator.send_json_to({"hello": 1})
    reply = await communicator.receive_json_from(timeout=2)
    assert reply["type"] == "error"
    await communicator.disconnect()


def test_publish_refuses_unknown_event_types():
    with pytest.raises(ValueError, match="Unknown event type"):
        publish("gossip", {})
