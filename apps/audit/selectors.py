"""Reading the audit trail: filtered events and their CSV form."""

import csv
import io
from collections.abc import Iterator

from django.db.models import QuerySet

from apps.audit.models import AuditEvent

CSV_COLUMNS = [
    "seq",
    "at",
    "actor_name",
    "action",
    "object_type",
    "object_id",
    "object_repr",
    "before",
    "after",
    "detail",
    "ip",
    "user_agent",
    "prev_hash",
    "hash",
]


def audit_events() -> QuerySet[AuditEvent]:
    return AuditEvent.objects.order_by("-seq")


def _csv_safe(value) -> str:
    """Text a spreadsheet will not run as a formula (a leading =, +, - or @ is quoted with an apostrophe)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def audit_csv_rows(events: QuerySet[AuditEvent]) -> Iterator[str]:
    """Yield the CSV text of `events` (header first), a chunk per row, reading the rows in batches."""
    import json

    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(CSV_COLUMNS)
    yield flush()
    for event in events.iterator(chunk_size=2000):
        row = []
        for column in CSV_COLUMNS:
            value = getattr(event, column)
            if column in ("before", "after", "detail"):
                value = "" if value is None else json.dumps(value, sort_keys=True)
            elif column == "at":
                value = value.isoformat()
            row.append(_csv_safe(value) if column not in ("seq", "at", "hash", "prev_hash") else value)
        writer.writerow(row)
        yield flush()
