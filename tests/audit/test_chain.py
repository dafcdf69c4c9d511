"""The hash chain without a database: any edit, removal, insertion or reordering is found at its first link."""

import datetime as dt
from dataclasses import dataclass, replace

from hypothesis import given, settings
from hypothesis import strategies as st

from apps.audit import chain

T0 = dt.datetime(2026, 1, 5, 9, 15, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Event:
    seq: int
    at: dt.datetime
    actor_id: int | None
    actor_name: str
    action: str
    object_type: str
    object_id: str
    object_repr: str
    before: object
    after: object
    detail: dict
    ip: str | None
    user_agent: str
    prev_hash: str
    hash: str


def build(n: int) -> list[Event]:
    events, prev = [], chain.GENESIS
    for i in range(1, n + 1):
        fields = {
            "seq": i,
            "at": T0 + dt.timedelta(seconds=i),
            "actor_id": i % 3 or None,
            "actor_name": f"user{i % 3}",
            "action": "trade_booked",
            "object_type": "portfolios.trade",
            "object_id": str(100 + i),
            "object_repr": f"BUY {i} RELIANCE",
            "before": None,
            "after": {"quantity": str(i), "price": 2900.5},
            "detail": {"n": i},
            "ip": "10.0.0.1",
            "user_agent": "pytest",
        }
        digest = chain.content_hash(chain.event_content(prev_hash=prev, **fields))
        events.append(Event(prev_hash=prev, hash=digest, **fields))
        prev = digest
    return events


def test_an_untouched_chain_verifies():
    events = build(20)
    report = chain.verify(events, head_seq=20, head_hash=events[-1].hash)
    assert report.ok and report.checked == 20


def test_the_hash_is_sha256_of_canonical_json_and_changes_with_every_field():
    event = build(1)[0]
    assert len(event.hash) == 64 and int(event.hash, 16) >= 0
    assert chain.event_hash(event) == event.hash
    for field, value in [("actor_name", "mallory"), ("after", {"quantity": "2"}), ("ip", "10.0.0.2"), ("at", T0)]:
        assert chain.event_hash(replace(event, **{field: value})) != event.hash


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 15), data=st.data())
def test_an_edited_event_is_named(n, data):
    events = build(n)
    k = data.draw(st.integers(0, n - 1))
    events[k] = replace(events[k], object_repr="SELL 999 RELIANCE")
    report = chain.verify(events, head_seq=n, head_hash=events[-1].hash)
    assert report.broken_seq == k + 1
    assert "changed" in report.reason


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 15), data=st.data())
def test_an_edited_event_with_its_hash_recomputed_breaks_the_next_link(n, data):
    events = build(n)
    k = data.draw(st.integers(0, n - 2))
    forged = replace(events[k], object_repr="forged")
    events[k] = replace(forged, hash=chain.event_hash(forged))
    report = chain.verify(events, head_seq=n, head_hash=events[-1].hash)
    assert report.broken_seq == k + 2


@settings(max_examples=60, deadline=None)
@given(n=st.integers(3, 15), data=st.data())
def test_a_removed_event_is_named(n, data):
    events = build(n)
    k = data.draw(st.integers(0, n - 2))
    del events[k]
    report = chain.verify(events, head_seq=n, head_hash=build(n)[-1].hash)
    assert report.broken_seq == k + 1
    assert "missing" in report.reason


def test_removing_the_newest_events_is_caught_by_the_head():
    events = build(10)
    report = chain.verify(events[:8], head_seq=10, head_hash=events[-1].hash)
    assert report.broken_seq == 9


def test_swapping_two_events_is_caught():
    events = build(6)
    events[2], events[3] = events[3], events[2]
    assert chain.verify(events).broken_seq == 3
