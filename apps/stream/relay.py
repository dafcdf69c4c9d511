"""One member of the desk group per web process, handing each desk message to the process's open sockets.

With every socket a member of the desk group, the channel layer delivers a published event once per socket:
channels-redis pops a process's messages one per round trip, so 200 sockets in one process cost 200 round trips
and decodings per event, and the last socket hears of it tens of milliseconds after the first. The relay is the
only member of the desk group in its process (one per event loop and channel layer): it receives each message
once and puts it in the queue of every socket of the process, where the socket's own task handles it in order.
A socket that falls QUEUE_LIMIT messages behind loses the newest, as the channel layer would drop them; its
sequence numbers show the gap and its heartbeat tells the client to fetch what it missed.

Sockets still join their user's and token's groups themselves: closing a user's sockets is addressed to them.
"""

import asyncio
import contextlib
import logging
import weakref

from apps.stream.publish import DESK_GROUP

logger = logging.getLogger(__name__)

# Messages a socket may hold before it drops new ones: the channel layer's own capacity per channel.
QUEUE_LIMIT = 100


class DeskRelay:
    def __init__(self, layer):
        self.layer = layer
        self.sockets: dict = {}  # socket -> None, in the order they joined
        self.channel: str | None = None
        self.task: asyncio.Task | None = None
        self.lock = asyncio.Lock()

    async def join(self, socket) -> None:
        """Start handing desk messages to `socket` (its desk_message_put), joining the group if need be."""
        async with self.lock:
            self.sockets[socket] = None
            if self.task is None or self.task.done():
                # The default prefix: channels-redis receives all of a process's channels through one queue.
                self.channel = await self.layer.new_channel()
                await self.layer.group_add(DESK_GROUP, self.channel)
                self.task = asyncio.create_task(self._listen(self.channel))

    async def leave(self, socket) -> None:
        """Stop handing messages to `socket`; the last socket to leave takes the relay out of the group."""
        async with self.lock:
            self.sockets.pop(socket, None)
            if self.sockets or self.task is None:
                return
            task, channel, self.task = self.task, self.channel, None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await self.layer.group_discard(DESK_GROUP, channel)

    async def _listen(self, channel: str) -> None:
        while True:
            try:
                message = await self.layer.receive(channel)
            except Exception:  # not CancelledError, a BaseException: leave() cancels the relay
                logger.exception("The desk relay could not receive from the channel layer; trying again")
                await asyncio.sleep(1)
                continue
            for socket in list(self.sockets):
                socket.desk_message_put(message)

    async def refresh(self) -> None:
        """Join the desk group again: the layer forgets a member after its group_expiry (a day by default)."""
        if self.task is not None and not self.task.done():
            await self.layer.group_add(DESK_GROUP, self.channel)


_relays: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, DeskRelay]]" = weakref.WeakKeyDictionary()


def desk_relay(layer) -> DeskRelay:
    """Return the relay of the running event loop for `layer` (tests give each test a layer and a loop)."""
    by_layer = _relays.setdefault(asyncio.get_running_loop(), {})
    relay = by_layer.get(id(layer))
    if relay is None or relay.layer is not layer:
        relay = by_layer[id(layer)] = DeskRelay(layer)
    return relay
