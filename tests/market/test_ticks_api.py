"""POST /api/v1/market/ticks: who may push, idempotency, and every way a tick is refused."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import Role
from apps.market import services
from apps.market.models import Quote, Tick
from tests.factories import InstrumentFactory, QuoteFactory, UserFactory

URL = "/api/v1/market/ticks"
NO_ROLE = "no-role"


def client_for(who: str | None) -> APIClient:
    client = APIClient()
    if who == NO_ROLE:
        client.force_authenticate(UserFactory(username="norole"))
    elif who is not None:
        client.force_authenticate(UserFactory(username=f"{who.lower()}-user", role=who))
    return client


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


@pytest.fixture
def events(monkeypatch):
    """Capture the published events and the recalculation requests instead of sending them."""
    sent = {"ticks": [], "recalculated": []}
    monkeypatch.setattr(services, "publish_many", lambda kind, items: sent["ticks"].extend((kind, d) for d in items))
    monkeypatch.setattr(services, "_recalculation_request", lambda ids: sent["recalculated"].append(ids))
    return sent


@pytest.fixture
def reliance(db):
    return InstrumentFactory(symbol="RELIANCE", exchange="NSE")


@pytest.fixture
def admin_client(db):
    return client_for(Role.ADMIN)


@pytest.mark.parametrize(
    ("who", "expected"), [(None, 401), (NO_ROLE, 403), (Role.VIEWER, 403), (Role.ANALYST, 403), (Role.ADMIN, 200)]
)
def test_only_admin_may_push_ticks(db, reliance, events, who, expected):
    body = {"ticks": [{"symbol": "RELIANCE", "price": "2900.5", "ts": iso(timezone.now())}]}
    response = client_for(who).post(URL, body, format="json")
    assert response.status_code == expected
    assert Tick.objects.count() == (1 if expected == 200 else 0)


def test_get_is_not_allowed_for_anyone_signed_in(db, reliance):
    assert client_for(Role.VIEWER).get(URL).status_code == 405


def test_sending_the_same_batch_twice_stores_each_tick_once(admin_client, reliance, events):
    now = timezone.now()
    body = [
        {"symbol": "RELIANCE", "price": 2900, "ts": iso(now - dt.timedelta(seconds=2))},
        {"symbol": "reliance", "price": "2901.25", "ts": iso(now - dt.timedelta(seconds=1))},
    ]
    first = admin_client.post(URL, body, format="json")
    assert first.status_code == 200
    assert (first.data["accepted"], first.data["duplicates"], first.data["rejected"]) == (2, 0, 0)
    second = admin_client.post(URL, body, format="json")
    assert second.status_code == 200
    assert (second.data["accepted"], second.data["duplicates"]) == (0, 2)
    assert [r["status"] for r in second.data["results"]] == ["duplicate", "duplicate"]
    assert Tick.objects.count() == 2
    quote = Quote.objects.get(instrument=reliance)
    assert quote.price == Decimal("2901.25")


@pytest.mark.parametrize(
    ("tick", "field", "message"),
    [
        ({"symbol": "NOPE", "price": 1}, "symbol", "unknown symbol"),
        ({"symbol": 12, "price": 1}, "symbol", "non-empty string"),
        # No symbol holds a NUL byte, and PostgreSQL refuses one in a query (a 500 there before).
        ({"symbol": "RELIANCE\x00", "price": 1}, "symbol", "unknown symbol"),
        ({"symbol": "RELIANCE", "price": "NaN"}, "price", "NaN"),
        ({"symbol": "RELIANCE", "price": "Infinity"}, "price", "NaN and infinities"),
        ({"symbol": "RELIANCE", "price": "-3"}, "price", "greater than zero"),
        ({"symbol": "RELIANCE", "price": 0}, "price", "greater than zero"),
        ({"symbol": "RELIANCE", "price": "abc"}, "price", "must be a number"),
        ({"symbol": "RELIANCE", "price": True}, "price", "must be a number"),
        ({"symbol": "RELIANCE", "price": [1]}, "price", "must be a number"),
        ({"symbol": "RELIANCE", "price": "1e30"}, "price", "must be below"),
        ({"symbol": "RELIANCE", "price": 1, "ts": "yesterday"}, "ts", "ISO 8601"),
        ({"symbol": "RELIANCE", "price": 1, "ts": 1714000000}, "ts", "ISO 8601"),
        ({"symbol": "RELIANCE", "price": 1, "ts": "2024-05-02T09:15:00"}, "ts", "time zone offset"),
        ({"symbol": "RELIANCE", "price": 1, "ts": "STALE"}, "ts", "older than"),
        ({"symbol": "RELIANCE", "price": 1, "ts": "FUTURE"}, "ts", "in the future"),
    ],
)
def test_each_rejection_names_its_field_and_stores_nothing(admin_client, reliance, events, tick, field, message):
    QuoteFactory(instrument=reliance, price=Decimal("100"), ts=timezone.now() - dt.timedelta(hours=1))
    now = timezone.now()
    ts = {"STALE": iso(now - dt.timedelta(days=1, seconds=5)), "FUTURE": iso(now + dt.timedelta(seconds=30))}
    tick = {"ts": iso(now), **tick}
    tick["ts"] = ts.get(tick["ts"], tick["ts"])
    response = admin_client.post(URL, {"ticks": [tick]}, format="json")
    assert response.status_code == 400
    result = response.data["results"][0]
    assert result["status"] == "rejected"
    assert result["field"] == field
    assert message in result["message"]
    assert result["message"].startswith(f"{field}:")
    assert Tick.objects.count() == 0
    assert Quote.objects.get(instrument=reliance).price == Decimal("100")
    assert events["ticks"] == []


def test_a_bad_tick_does_not_stop_the_good_ones(admin_client, reliance, events):
    now = iso(timezone.now())
    body = {"ticks": [{"symbol": "RELIANCE", "price": 10, "ts": now}, "not an object", {"symbol": "X", "price": 1}]}
    response = admin_client.post(URL, body, format="json")
    assert response.status_code == 200
    assert [r["status"] for r in response.data["results"]] == ["accepted", "rejected", "rejected"]
    assert Tick.objects.count() == 1


@pytest.mark.parametrize("body", [{"prices": []}, {"ticks": "x"}, "text", [], {"ticks": [], "extra": 1}])
def test_a_malformed_body_is_refused(admin_client, reliance, body):
    response = admin_client.post(URL, body, format="json")
    assert response.status_code == 400
    assert "ticks" in response.data["detail"]


def test_a_batch_over_the_limit_is_refused_whole(admin_client, reliance, settings, events):
    settings.TICK_MAX_BATCH = 3
    now = timezone.now()
    body = [{"symbol": "RELIANCE", "price": 1, "ts": iso(now - dt.timedelta(seconds=i))} for i in range(4)]
    response = admin_client.post(URL, body, format="json")
    assert response.status_code == 400
    assert "at most 3" in response.data["detail"]
    assert Tick.objects.count() == 0


def test_the_quote_only_moves_forward_in_time(admin_client, reliance, events):
    now = timezone.now()
    QuoteFactory(instrument=reliance, price=Decimal("100"), ts=now - dt.timedelta(seconds=10))
    older = [{"symbol": "RELIANCE", "price": 90, "ts": iso(now - dt.timedelta(seconds=20))}]
    assert admin_client.post(URL, older, format="json").status_code == 200
    assert Quote.objects.get(instrument=reliance).price == Decimal("100")
    newer = [
        {"symbol": "RELIANCE", "price": 110, "ts": iso(now - dt.timedelta(seconds=1))},
        {"symbol": "RELIANCE", "price": 105, "ts": iso(now - dt.timedelta(seconds=5))},
    ]
    assert admin_client.post(URL, newer, format="json").status_code == 200
    quote = Quote.objects.get(instrument=reliance)
    assert (quote.price, quote.source) == (Decimal("110"), "api")
    assert Tick.objects.count() == 3


def test_a_first_tick_creates_the_quote(admin_client, reliance, events):
    admin_client.post(URL, [{"symbol": "RELIANCE", "price": "7.5", "ts": iso(timezone.now())}], format="json")
    assert Quote.objects.get(instrument=reliance).price == Decimal("7.5")


def test_one_tick_event_per_instrument_after_commit(admin_client, reliance, events, django_capture_on_commit_callbacks):
    from tests.factories import PriceBarFactory

    PriceBarFactory(instrument=reliance, date=timezone.now().date() - dt.timedelta(days=3), close=Decimal("100"))
    tcs = InstrumentFactory(symbol="TCS", exchange="NSE")
    now = timezone.now()
    body = [
        {"symbol": "RELIANCE", "price": "101", "ts": iso(now - dt.timedelta(seconds=2))},
        {"symbol": "RELIANCE", "price": "102", "ts": iso(now - dt.timedelta(seconds=1))},
        {"symbol": "TCS", "price": "50", "ts": iso(now)},
    ]
    with django_capture_on_commit_callbacks(execute=True):
        assert admin_client.post(URL, body, format="json").status_code == 200
    by_symbol = {data["symbol"]: data for kind, data in events["ticks"] if kind == "tick"}
    assert len(events["ticks"]) == 2
    assert by_symbol["RELIANCE"]["price"] == "102"
    assert by_symbol["RELIANCE"]["change"] == "2"
    assert by_symbol["RELIANCE"]["previous_close"] == "100"
    assert by_symbol["RELIANCE"]["change_pct"] == pytest.approx(0.02)
    assert by_symbol["TCS"]["change"] is None
    assert events["recalculated"] == [sorted([reliance.pk, tcs.pk])]


def test_the_schema_documents_the_tick_endpoint(db):
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")
