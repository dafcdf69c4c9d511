"""publish(): sequence numbers, storage for gap recovery, housekeeping and JSON-safe data."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import transaction

from apps.stream import publish as publish_module
from apps.stream.models import StreamEvent
from apps.stream.publish import SEQ_CACHE_KEY, current_seq, jsonable, publish


def test_publish_refuses_unknown_event_types():
    with pytest.raises(ValueError, match="Unknown event type"):
        publish("gossip", {})


@pytest.mark.django_db
def test_published_events_are_stored_with_increasing_seq(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        publish("tick", {"symbol": "RELIANCE", "price": Decimal("2900.50")})
        publish("risk_update", {"portfolio_code": "ALPHA", "var": float("nan")})
    first, second = StreamEvent.objects.order_by("seq")
    assert second.seq == first.seq + 1 == current_seq()
    assert first.as_message() == {"type": "tick", "seq": first.seq, "data": {"symbol": "RELIANCE", "price": "2900.50"}}
    assert second.data == {"portfolio_code": "ALPHA", "var": None}


@pytest.mark.django_db
def test_nothing_is_stored_or_numbered_for_a_rolled_back_transaction(django_capture_on_commit_callbacks):
    before = current_seq()
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        publish("alert", {"message": "never"})
        raise RuntimeError
    assert current_seq() == before
    assert not StreamEvent.objects.exists()


@pytest.mark.django_db
def test_a_lost_counter_restarts_after_the_newest_stored_event(django_capture_on_commit_callbacks):
    from django.core.cache import cache

    StreamEvent.objects.create(seq=current_seq() + 1000, type="alert", data={})
    cache.delete(SEQ_CACHE_KEY)
    with django_capture_on_commit_callbacks(execute=True):
        publish("alert", {})
    assert StreamEvent.objects.order_by("-seq").first().seq == current_seq() == StreamEvent.objects.first().seq + 1


@pytest.mark.django_db
def test_old_events_are_deleted_beyond_the_kept_number(settings, monkeypatch, django_capture_on_commit_callbacks):
    settings.STREAM_KEEP_EVENTS = 3
    monkeypatch.setattr(publish_module, "PRUNE_EVERY", 1)
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(6):
            publish("tick", {"symbol": "TCS", "price": str(n)})
    assert list(StreamEvent.objects.values_list("seq", flat=True)) == [
        current_seq() - 2,
        current_seq() - 1,
        current_seq(),
    ]


def test_event_data_is_made_json_safe():
    when = dt.datetime(2024, 5, 2, 3, 45, tzinfo=dt.UTC)
    assert jsonable({"at": when, "n": (1, float("inf")), 3: Decimal("NaN")}) == {
        "at": "2024-05-02T03:45:00+00:00",
        "n": [1, None],
        "3": None,
    }
    with pytest.raises(TypeError, match="object"):
        jsonable({"x": object()})


@pytest.mark.django_db(transaction=True)
def test_publish_never_raises_into_committed_work_when_redis_is_down(monkeypatch, caplog):
    """A seed or an import run before Redis is up commits its work; the event is stored, only not delivered live."""
    import redis

    class DownLayer:
        async def group_send(self, group, message):
            raise redis.exceptions.ConnectionError("Error 2 connecting to var/redis.sock.")

    def counter_down():
        raise redis.exceptions.ConnectionError("Error 2 connecting to var/redis.sock.")

    monkeypatch.setattr(publish_module, "next_seq", counter_down)
    monkeypatch.setattr(publish_module, "get_channel_layer", lambda: DownLayer())
    with transaction.atomic():
        publish("tick", {"symbol": "RELIANCE", "price": "1"})
    assert StreamEvent.objects.filter(type="tick").exists()
    assert "not delivered live" in caplog.text


@pytest.mark.django_db
def test_publish_many_numbers_stores_and_sends_its_events_in_order(monkeypatch, django_capture_on_commit_callbacks):
    sent = []
    monkeypatch.setattr(publish_module, "group_send_many_quietly", lambda group, messages: sent.extend(messages))
    before = current_seq()
    with django_capture_on_commit_callbacks(execute=True):
        publish_module.publish_many("risk_update", [{"portfolio_code": code} for code in ("A", "B", "C")])
        assert not StreamEvent.objects.exists()  # nothing before the commit
    stored = list(StreamEvent.objects.order_by("seq").values_list("seq", "data"))
    assert stored == [
        (before + 1, {"portfolio_code": "A"}),
        (before + 2, {"portfolio_code": "B"}),
        (before + 3, {"portfolio_code": "C"}),
    ]
    assert current_seq() == before + 3
    assert [m["type"] for m in sent] == ["stream.events"]
    assert sent[0]["events"] == [{"type": "risk_update", "seq": s, "data": d} for s, d in stored]
    with pytest.raises(ValueError, match="Unknown event type"):
        publish_module.publish_many("gossip", [{}])
