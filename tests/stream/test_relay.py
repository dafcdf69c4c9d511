"""The desk relay: one member of the desk group per process, handing each event to every open socket in order."""

import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from apps.accounts.models import Role
from apps.stream.publish import DESK_GROUP
from apps.stream.relay import QUEUE_LIMIT, desk_relay
from tests.factories import UserFactory
from tests.stream.conftest import open_socket, publish_committed

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


async def desk_members() -> int:
    layer = get_channel_layer()
    if hasattr(layer, "groups"):  # the in-memory layer
        return len(layer.groups.get(DESK_GROUP, {}))
    return await layer.connection(layer.consistent_hash(DESK_GROUP)).zcard(layer._group_key(DESK_GROUP))


async def alerts_received(communicator, n: int) -> list[str]:
    messages = []
    while len(messages) < n:
        event = await communicator.receive_json_from()
        if event["type"] == "alert":
            messages.append(event["data"]["message"])
    return messages


async def test_the_process_joins_the_desk_group_once_and_every_socket_gets_every_event_in_order():
    user = await database_sync_to_async(UserFactory)(role=Role.VIEWER)
    sockets = [await open_socket(user) for _ in range(3)]
    assert await desk_members() == 1
    await publish_committed(*[("alert", {"message": f"alert {k}"}) for k in range(5)])
    for communicator in sockets:
        assert await alerts_received(communicator, 5) == [f"alert {k}" for k in range(5)]
    for communicator in sockets[:2]:
        await communicator.disconnect()
    assert await desk_members() == 1  # one socket is still open
    await publish_committed(("alert", {"message": "for the last one"}))
    assert await alerts_received(sockets[2], 1) == ["for the last one"]
    await sockets[2].disconnect()
    assert await desk_members() == 0


async def test_a_socket_that_falls_behind_keeps_the_oldest_and_drops_the_rest():
    """As the channel layer drops messages for a full channel: the socket's seq then shows the gap."""
    communicator = await open_socket(await database_sync_to_async(UserFactory)(role=Role.VIEWER))
    (socket,) = desk_relay(get_channel_layer()).sockets
    socket.desk_task.cancel()  # the socket stops taking messages from its queue
    for seq in range(1, QUEUE_LIMIT + 6):
        socket.desk_message_put({"type": "stream.event", "event": {"type": "alert", "seq": seq, "data": {}}})
    held = [socket.desk_queue.get_nowait()["event"]["seq"] for _ in range(socket.desk_queue.qsize())]
    assert held == list(range(1, QUEUE_LIMIT + 1))
    await asyncio.wait_for(communicator.disconnect(), 3)
