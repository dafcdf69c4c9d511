"""The hash chain of AuditEvent: what is hashed, and walking the chain to find the first broken link.

hash = SHA-256 of the canonical JSON (sorted keys, no spaces, UTF-8) of the event's content: seq, time (ISO
8601 in UTC with microseconds), actor id and name, action, object type, id and repr, before, after, detail,
IP, user agent, and prev_hash, the hash of the event before it (GENESIS for the first). Changing any of
these in any event changes its hash; then either its stored hash no longer matches its content, or, if
the hash was recomputed too, the next event's prev_hash no longer matches it.
"""

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

GENESIS = "0" * 64


def event_content(
    *,
    seq: int,
    at: dt.datetime,
    actor_id: int | None,
    actor_name: str,
    action: str,
    object_type: str,
    object_id: str,
    object_repr: str,
    before,
    after,
    detail,
    ip: str | None,
    user_agent: str,
    prev_hash: str,
) -> dict:
    return {
        "seq": int(seq),
        "at": at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "actor_id": actor_id,
        "actor_name": actor_name,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "object_repr": object_repr,
        "before": before,
        "after": after,
        "detail": detail,
        "ip": ip,
        "user_agent": user_agent,
        "prev_hash": prev_hash,
    }


def content_hash(content: dict) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def event_hash(event) -> str:
    """Recompute the hash of a stored AuditEvent from its fields."""
    return content_hash(
        event_content(
            seq=event.seq,
            at=event.at,
            actor_id=event.actor_id,
            actor_name=event.actor_name,
            action=event.action,
            object_type=event.object_type,
            object_id=event.object_id,
            object_repr=event.object_repr,
            before=event.before,
            after=event.after,
            detail=event.detail,
            ip=str(event.ip) if event.ip is not None else None,
            user_agent=event.user_agent,
            prev_hash=event.prev_hash,
        )
    )


@dataclass(frozen=True)
class ChainReport:
    checked: int
    broken_seq: int | None = None  # the first event that does not hold
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_seq is None


def verify(events: Iterable, *, head_seq: int | None = None, head_hash: str | None = None) -> ChainReport:
    """Walk events in seq order; return the first broken link, if any.

    A link is broken when an event's seq is not the one after the previous event's (an event was removed
    or inserted), when its prev_hash is not the previous event's hash, or when its stored hash is not the
    hash of its content (it was edited). `head_seq`/`head_hash` (AuditChainHead) catch the removal of the
    newest events, which leaves no gap inside the chain.
    """
    expected_seq, expected_prev, checked = 1, GENESIS, 0
    for event in events:
        if event.seq != expected_seq:
            return ChainReport(checked, expected_seq, f"event #{expected_seq} is missing (next found is #{event.seq})")
        if event.prev_hash != expected_prev:
            return ChainReport(checked, event.seq, f"event #{event.seq} does not follow the hash of #{event.seq - 1}")
        if event_hash(event) != event.hash:
            return ChainReport(checked, event.seq, f"event #{event.seq} was changed after it was recorded")
        checked += 1
        expected_seq, expected_prev = event.seq + 1, event.hash
    if head_seq is not None and head_seq != expected_seq - 1:
        return ChainReport(
            checked, expected_seq, f"the chain ends at #{expected_seq - 1} but {head_seq} events were recorded"
        )
    if head_hash is not None and head_seq and head_hash != expected_prev:
        return ChainReport(checked, expected_seq - 1, f"event #{expected_seq - 1} is not the last event recorded")
    return ChainReport(checked)
