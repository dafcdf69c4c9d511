"""Reads of the stream app: stored events for gap recovery."""

from django.db.models import QuerySet

from apps.stream.models import StreamEvent


def stream_events_after(*, after: int, limit: int) -> QuerySet[StreamEvent]:
    """Return up to `limit` stored events with seq greater than `after`, oldest first."""
    return StreamEvent.objects.filter(seq__gt=after).order_by("seq")[:limit]


def stream_oldest_seq() -> int | None:
    """Return the seq of the oldest event still stored, or None when none is."""
    return StreamEvent.objects.order_by("seq").values_list("seq", flat=True).first()
