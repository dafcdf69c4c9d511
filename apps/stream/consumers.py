from channels.generic.websocket import AsyncJsonWebsocketConsumer

from apps.stream.publish import DESK_GROUP

CLOSE_UNAUTHENTICATED = 4401


class RiskStreamConsumer(AsyncJsonWebsocketConsumer):
    """Forward desk events to a signed-in user's socket; anonymous sockets are closed with 4401."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            # Accept first: a handshake refused outright reaches the browser only as an anonymous 1006.
            await self.accept()
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        await self.channel_layer.group_add(DESK_GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(DESK_GROUP, self.channel_name)

    async def receive_json(self, content, **kwargs) -> None:
        await self.send_json({"type": "error", "data": {"message": "This stream does not take messages yet."}})

    async def stream_event(self, message: dict) -> None:
        await self.send_json(message["event"])
