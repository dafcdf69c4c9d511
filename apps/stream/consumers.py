"""The live stream socket: authenticate, join the desk and user groups, filter, coalesce and forward events."""

import asyncio
import contextlib
import json
import logging
import time
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.core.cache import cache
from django.template import TemplateDoesNotExist
from django.template.loader import render_to_string
from django.utils import timezone

from apps.stream.publish import SEQ_CACHE_KEY, token_group, user_group
from apps.stream.relay import QUEUE_LIMIT, desk_relay
from apps.stream.services import CLOSE_FORBIDDEN, CLOSE_UNAUTHENTICATED
from riskradar import metrics

logger = logging.getLogger(__name__)

__all__ = ["CLOSE_FORBIDDEN", "CLOSE_UNAUTHENTICATED", "RiskStreamConsumer"]

ERR_NOT_JSON = 'Send a JSON object, e.g. {"action": "subscribe", "symbols": ["RELIANCE"]}.'
ERR_TOO_LARGE = "A message may be at most {max} bytes."
ERR_NOT_OBJECT = "A message must be a JSON object with an 'action'."
ERR_UNKNOWN_ACTION = "Unknown action {action!r}; expected 'subscribe' or 'unsubscribe'."
ERR_CODES = "'{field}' must be a list of at most {max} strings of at most {length} characters."
MAX_CODES = 500
MAX_CODE_LENGTH = 64
MAX_MESSAGE_BYTES = 64 * 1024
FILTER_FIELDS = ("portfolios", "symbols")
# Two processes publishing at once can deliver seq n+1 before n; a seq still missing after this long was lost
# (the channel layer drops messages for a socket that falls behind).
LATE_GRACE_SECONDS = 1.0
MAX_TRACKED_MISSING = 1000


def heartbeat_seconds() -> float:
    return getattr(settings, "STREAM_HEARTBEAT_SECONDS", 15)


def group_refresh_seconds() -> float:
    """How often a socket joins its groups again: the channel layer forgets a member after its group_expiry
    (a day by default), and a dashboard left open overnight would stop receiving the desk's events."""
    return getattr(settings, "STREAM_GROUP_REFRESH_SECONDS", 3600)


def coalesce_seconds() -> float:
    return getattr(settings, "STREAM_COALESCE_MS", 250) / 1000


def coalesce_key(event: dict) -> tuple[str, str] | None:
    """Return what a newer event of the same kind supersedes: ticks per symbol, risk updates per portfolio."""
    data = event.get("data") or {}
    if event["type"] == "tick" and data.get("symbol") is not None:
        return ("tick", str(data["symbol"]))
    if event["type"] == "risk_update" and data.get("portfolio_code") is not None:
        return ("risk_update", str(data["portfolio_code"]))
    return None


class RiskStreamConsumer(AsyncWebsocketConsumer):
    """Forward desk events to a signed-in user's socket, as JSON or (?format=html) as rendered partials.

    Anonymous sockets are closed with 4401, users without a role with 4403. Ticks and risk updates are
    coalesced per symbol and portfolio: the first after a quiet window goes out at once, the rest of a burst
    at most once per STREAM_COALESCE_MS (the latest of each); alerts are never coalesced or dropped.
    """

    async def connect(self) -> None:
        self.user = self.scope.get("user")
        self.html = parse_qs(self.scope.get("query_string", b"").decode("latin-1")).get("format") == ["html"]
        self.filters: dict[str, set[str] | None] = dict.fromkeys(FILTER_FIELDS)
        self.pending: dict[tuple[str, str], dict] = {}
        self.flush_task: asyncio.Task | None = None
        self.heartbeat_task: asyncio.Task | None = None
        self.desk_task: asyncio.Task | None = None
        self.relay = None
        self.groups_joined: list[str] = []
        # Seqs skipped by the channel layer and when the skip was noticed; see heartbeat().
        self.missing: dict[int, float] = {}
        if self.user is None or not self.user.is_authenticated:
            await self.refuse(CLOSE_UNAUTHENTICATED)
            return
        if not self.scope.get("api_token") and not await database_sync_to_async(self.session_passed_two_factor)():
            # Signed in with a password but not yet with the code (or an Admin who has not set it up).
            await self.refuse(CLOSE_UNAUTHENTICATED)
            return
        if await database_sync_to_async(lambda: self.user.role)() is None:
            await self.refuse(CLOSE_FORBIDDEN)
            return
        self.last_seq = int(await cache.aget(SEQ_CACHE_KEY) or 0)
        self.groups_joined = [user_group(self.user.pk)]
        if self.scope.get("api_token"):
            self.groups_joined.append(token_group(self.scope["api_token"]))
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        # Desk events come through the process's relay (apps/stream/relay.py), into this socket's queue.
        self.desk_queue = asyncio.Queue(maxsize=QUEUE_LIMIT)
        self.desk_task = asyncio.create_task(self.desk_messages())
        self.relay = desk_relay(self.channel_layer)
        await self.relay.join(self)
        await self.accept()
        self.counted = True
        await sync_to_async(metrics.sockets_opened, thread_sensitive=False)()
        self.heartbeat_task = asyncio.create_task(self.heartbeat_loop())

    def session_passed_two_factor(self) -> bool:
        from apps.accounts.selectors import session_two_factor_passed

        return session_two_factor_passed(session=self.scope.get("session"), user=self.user)

    async def refuse(self, code: int) -> None:
        # Accept first: a handshake refused outright reaches the browser only as an anonymous 1006.
        await self.accept()
        await self.close(code=code)

    async def disconnect(self, code: int) -> None:
        if getattr(self, "counted", False):
            self.counted = False
            await sync_to_async(metrics.sockets_closed, thread_sensitive=False)()
        if self.relay is not None:
            await self.relay.leave(self)
        for task in (self.heartbeat_task, self.flush_task, self.desk_task):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    # ------------------------------------------------------------------ client messages
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None:
            await self.send_error(ERR_NOT_JSON)
            return
        if len(text_data) > MAX_MESSAGE_BYTES:
            await self.send_error(ERR_TOO_LARGE.format(max=MAX_MESSAGE_BYTES))
            return
        try:
            content = json.loads(text_data)
        except ValueError:
            await self.send_error(ERR_NOT_JSON)
            return
        if not isinstance(content, dict):
            await self.send_error(ERR_NOT_OBJECT)
            return
        action = content.get("action")
        if action not in ("subscribe", "unsubscribe"):
            # Echo a short string or the type, never a whole payload.
            shown = action[:50] if isinstance(action, str) else action if action is None else type(action).__name__
            await self.send_error(ERR_UNKNOWN_ACTION.format(action=shown))
            return
        codes: dict[str, set[str] | None] = {}
        for field in FILTER_FIELDS:
            value = content.get(field)
            if value is None:
                codes[field] = None
                continue
            if (
                not isinstance(value, list)
                or len(value) > MAX_CODES
                or not all(isinstance(code, str) and len(code) <= MAX_CODE_LENGTH for code in value)
            ):
                await self.send_error(ERR_CODES.format(field=field, max=MAX_CODES, length=MAX_CODE_LENGTH))
                return
            codes[field] = set(value) or None
        for field, wanted in codes.items():
            if action == "subscribe":
                # A subscribe states the whole subscription: an empty or omitted list means everything.
                self.filters[field] = wanted
            elif wanted and self.filters[field] is not None:
                self.filters[field] = self.filters[field] - wanted
        subscription = {field: sorted(value) if value is not None else None for field, value in self.filters.items()}
        await self.send_json({"type": "subscribed", "data": subscription})

    # ------------------------------------------------------------------ channel layer messages
    def desk_message_put(self, message: dict) -> None:
        """Take a desk message from the relay; a socket QUEUE_LIMIT messages behind drops it (its seq shows it)."""
        with contextlib.suppress(asyncio.QueueFull):
            self.desk_queue.put_nowait(message)

    async def desk_messages(self) -> None:
        """Handle the relay's desk messages in order, as the channel layer's messages are handled."""
        handlers = {"stream.event": self.stream_event, "stream.events": self.stream_events}
        while True:
            message = await self.desk_queue.get()
            try:
                await handlers[message["type"]](message)
            except Exception:
                logger.exception("Could not forward a desk message of type %r", message.get("type"))

    async def stream_event(self, message: dict) -> None:
        await self.take(message["event"])

    async def stream_events(self, message: dict) -> None:
        """Handle a batch of events sent as one channel message (publish_many), each as stream_event would.

        A batch that reaches a quiet socket goes out at once, like a single event (the latest per symbol or
        portfolio within it); what follows within the window is held.
        """
        quiet = self.flush_task is None or self.flush_task.done()
        for event in message["events"]:
            await self.take(event, hold=True)
        if quiet and self.pending:
            await self.flush()
            self.flush_task = asyncio.create_task(self.flush_later())

    async def take(self, event: dict, *, hold: bool = False) -> None:
        """Send, hold or drop one event from the channel layer (subscription, then coalescing)."""
        self.note_seq(event.get("seq", 0))
        if not self.wanted(event):
            return
        key = coalesce_key(event)
        if key is None or coalesce_seconds() <= 0:
            # Flush first, so the client still receives events in sequence order.
            await self.flush()
            await self.forward(event)
            return
        if not hold and (self.flush_task is None or self.flush_task.done()):
            # A quiet socket (nothing sent or held in the last window) sends at once; what follows within the
            # window is held, and only the latest per symbol or portfolio goes out when it ends.
            await self.flush()
            await self.forward(event)
            self.flush_task = asyncio.create_task(self.flush_later())
            return
        self.pending.pop(key, None)
        self.pending[key] = event

    async def stream_close(self, message: dict) -> None:
        await self.close(code=message["code"])

    # ------------------------------------------------------------------ helpers
    def wanted(self, event: dict) -> bool:
        """Return whether the socket's subscription lets the event through."""
        data = event.get("data") or {}
        symbols, portfolios = self.filters["symbols"], self.filters["portfolios"]
        if event["type"] == "tick":
            return symbols is None or data.get("symbol") in symbols
        if event["type"] in ("risk_update", "alert") and "portfolio_code" in data:
            return portfolios is None or data["portfolio_code"] in portfolios
        return True

    async def flush_later(self) -> None:
        """Send what was held at the end of each window, until a window passes with nothing held."""
        while True:
            await asyncio.sleep(coalesce_seconds())
            if not self.pending:
                return
            await self.flush()

    async def flush(self) -> None:
        """Send the coalesced events, oldest first."""
        pending, self.pending = self.pending, {}
        for event in sorted(pending.values(), key=lambda e: e.get("seq", 0)):
            await self.forward(event)

    def note_seq(self, seq: int) -> None:
        """Track the highest seq received and any the channel layer skipped on the way."""
        if seq > self.last_seq + 1:
            noticed = time.monotonic()
            skipped = range(self.last_seq + 1, min(seq, self.last_seq + 1 + MAX_TRACKED_MISSING))
            self.missing.update(dict.fromkeys(skipped, noticed))
        self.missing.pop(seq, None)
        self.last_seq = max(self.last_seq, seq)

    async def heartbeat_loop(self) -> None:
        joined = time.monotonic()
        while True:
            await asyncio.sleep(heartbeat_seconds())
            if time.monotonic() - joined >= group_refresh_seconds():
                for group in self.groups_joined:
                    await self.channel_layer.group_add(group, self.channel_name)
                await self.relay.refresh()
                joined = time.monotonic()
            await self.heartbeat()

    async def heartbeat(self) -> None:
        """Send the latest seq this socket has received; everything up to it was sent, filtered out or superseded.

        When the channel layer lost events for this socket, `missed_after` names the seq after which the
        client should fetch from the gap endpoint.
        """
        await self.flush()
        await sync_to_async(metrics.sockets_refresh, thread_sensitive=False)()
        data = {"server_time": timezone.now().isoformat()}
        cutoff = time.monotonic() - LATE_GRACE_SECONDS
        lost = [seq for seq, noticed in self.missing.items() if noticed <= cutoff]
        if lost:
            data["missed_after"] = min(lost) - 1
            for seq in lost:
                del self.missing[seq]
        await self.forward({"type": "heartbeat", "seq": self.last_seq, "data": data})

    async def forward(self, event: dict) -> None:
        """Send the event as JSON, or rendered with stream/_<type>.html for an html socket."""
        if not self.html:
            await self.send_json(event)
            return
        html = await self.render(event)
        if html.strip():
            await self.send(text_data=html)

    @database_sync_to_async
    def render(self, event: dict) -> str:
        context = {"event": event["data"], "seq": event.get("seq"), "user": self.user}
        try:
            return render_to_string(f"stream/_{event['type']}.html", context)
        except TemplateDoesNotExist:
            # The page has no partial for this kind of event yet: it receives nothing rather than a broken socket.
            return ""
        except Exception:
            # A broken partial must not close every dashboard's socket; the log names it.
            logger.exception("Could not render stream/_%s.html", event["type"])
            return ""

    async def send_error(self, message: str) -> None:
        await self.send_json({"type": "error", "data": {"message": message}})

    async def send_json(self, content: dict) -> None:
        await self.send(text_data=json.dumps(content))
