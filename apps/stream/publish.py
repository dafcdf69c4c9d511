"""The one way the other apps send an event to connected clients."""

import datetime as dt
import decimal
import hashlib
import logging
import math
import uuid
from collections.abc import Iterable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.db import transaction

logger = logging.getLogger(__name__)

DESK_GROUP = "desk"
EVENT_TYPES = {"risk_update", "alert", "tick", "heartbeat"}
SEQ_CACHE_KEY = "stream:seq"
# Old events are deleted once every this many publishes, not on every one.
PRUNE_EVERY = 100
# publish_many sends its events to the sockets in channel-layer messages of at most this many.
BATCH_EVENTS = 250


def user_group(user_id: int) -> str:
    """Return the group every socket of one user joins, so they can be closed together."""
    return f"user-{user_id}"


def token_group(key: str) -> str:
    """Return the group of the sockets signed in with one API token (named by a hash, never the key)."""
    return f"token-{hashlib.sha256(key.encode()).hexdigest()[:32]}"


def keep_events() -> int:
    return getattr(settings, "STREAM_KEEP_EVENTS", 5000)


def jsonable(value):
    """Return `value` as plain JSON types: Decimal and UUID as strings, times in ISO 8601, NaN and infinities as None.

    The same data goes to the database, the channel layer and clients, so it is normalised once, at publish time.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, decimal.Decimal):
        return str(value) if value.is_finite() else None
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(item) for item in value]
    raise TypeError(f"Event data holds a {type(value).__name__}, which cannot be sent as JSON.")


def current_seq() -> int:
    """Return the sequence number of the latest published event (0 before the first)."""
    return int(cache.get(SEQ_CACHE_KEY) or 0)


def next_seq(count: int = 1) -> int:
    """Return the next global sequence number (an atomic INCR on the shared cache); with `count`, take that
    many consecutive numbers and return the last.

    When the counter is missing (a new or flushed Redis) it restarts after the newest stored event, so
    sequence numbers never go backwards while events are kept.
    """
    from apps.stream.models import StreamEvent

    try:
        return cache.incr(SEQ_CACHE_KEY, count)
    except ValueError:
        latest = StreamEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
        cache.add(SEQ_CACHE_KEY, latest, timeout=None)
        return cache.incr(SEQ_CACHE_KEY, count)


def store_event(event: dict) -> None:
    """Keep the event for gap recovery; every PRUNE_EVERY events, delete those beyond the last keep_events()."""
    from apps.stream.models import StreamEvent

    StreamEvent.objects.create(seq=event["seq"], type=event["type"], data=event["data"])
    if event["seq"] % PRUNE_EVERY == 0:
        StreamEvent.objects.filter(seq__lte=event["seq"] - keep_events()).delete()


def publish(event_type: str, data: dict) -> None:
    """Send {"type": event_type, "seq": n, "data": data} to every connected client once the transaction commits.

    The sequence number is taken and the event stored after the commit, so rolled-back work neither
    reaches clients nor uses up a number.
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"Unknown event type '{event_type}'.")
    data = jsonable(data)

    def send() -> None:
        # The work this event reports has committed: a notification that cannot go out is logged, never
        # raised into the code that did the work (a seed or an import run before Redis is up, Redis down).
        try:
            seq = next_seq()
        except Exception:
            logger.warning("Sequence counter unavailable; numbering %s after the stored events", event_type)
            seq = _seq_after_stored()
        event = {"type": event_type, "seq": seq, "data": data}
        try:
            store_event(event)
        except Exception:
            # Live clients still get the event; only its recovery through the gap endpoint is lost.
            logger.exception("Could not store stream event %s", event["seq"])
        group_send_quietly(DESK_GROUP, {"type": "stream.event", "event": event})

    transaction.on_commit(send)


def publish_many(event_type: str, items: Iterable[dict]) -> None:
    """publish() each of `items` (one event each, in order), with one sequence increment, one insert and one
    trip to the channel layer's event loop for them all once the transaction commits.

    For a batch (the ticks of a feed round, the risk updates of a desk-wide recalculation): the same events,
    numbered consecutively and sent in that order, as many publish() calls would give, at a fraction of the
    cost. They travel to the sockets as "stream.events" messages of up to BATCH_EVENTS events, which the
    consumer takes apart.
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"Unknown event type '{event_type}'.")
    datas = [jsonable(data) for data in items]
    if not datas:
        return

    def send() -> None:
        count = len(datas)
        try:
            last = next_seq(count)
        except Exception:
            logger.warning("Sequence counter unavailable; numbering %s after the stored events", event_type)
            last = _seq_after_stored() + count - 1
        events = [{"type": event_type, "seq": last - count + 1 + n, "data": data} for n, data in enumerate(datas)]
        try:
            store_events(events)
        except Exception:
            logger.exception("Could not store stream events %s to %s", events[0]["seq"], last)
        # One channel-layer message per chunk: a socket's channel holds at most `capacity` (100) messages, so
        # a thousand separate ones sent at once would overflow (and be dropped) before it could read them.
        chunks = [events[n : n + BATCH_EVENTS] for n in range(0, len(events), BATCH_EVENTS)]
        group_send_many_quietly(DESK_GROUP, [{"type": "stream.events", "events": chunk} for chunk in chunks])

    transaction.on_commit(send)


def store_events(events: list[dict]) -> None:
    """store_event() for consecutive events, with one insert (and one prune when they pass a PRUNE_EVERY mark)."""
    from apps.stream.models import StreamEvent

    StreamEvent.objects.bulk_create(StreamEvent(seq=e["seq"], type=e["type"], data=e["data"]) for e in events)
    first, last = events[0]["seq"], events[-1]["seq"]
    if (first - 1) // PRUNE_EVERY != last // PRUNE_EVERY:
        StreamEvent.objects.filter(seq__lte=last - keep_events()).delete()


def group_send_many_quietly(group: str, messages: list[dict]) -> bool:
    """group_send_quietly() for several messages, sent one after the other in one trip to the event loop."""

    async def send_all() -> None:
        layer = get_channel_layer()
        for message in messages:
            await layer.group_send(group, message)

    try:
        async_to_sync(send_all)()
    except Exception:
        logger.warning(
            "Channel layer unavailable; %s events to %s not all delivered live", len(messages), group, exc_info=True
        )
        return False
    return True


def _seq_after_stored() -> int:
    from apps.stream.models import StreamEvent

    return (StreamEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0) + 1


def group_send_quietly(group: str, message: dict) -> bool:
    """Send to a channel-layer group; log and return False when the layer cannot be reached.

    Clients that missed the message recover it over HTTP (the gap endpoint, or a page's re-fetch).
    """
    try:
        async_to_sync(get_channel_layer().group_send)(group, message)
    except Exception as exc:
        # One line: while Redis is down (or not started yet, as during seed_demo) this repeats for every send.
        logger.warning(
            "Channel layer unavailable; %s to %s not delivered live (%s: %s)",
            message.get("type"),
            group,
            type(exc).__name__,
            exc,
            exc_info=logger.isEnabledFor(logging.DEBUG),
        )
        return False
    return True
