"""POST /api/v1/trades/batch: who may book, per-item errors by index and field, idempotency, partial semantics,
positions equal to a replay of the trades, and surveillance of the batch after the commit."""

import datetime as dt
import threading
from decimal import Decimal
from itertools import pairwise

import numpy as np
import pytest
from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import OperationalError, connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st
from rest_framework.test import APIClient

from apps.accounts.models import Role
from apps.alerts.models import Alert, AlertRule, RuleKind
from apps.audit.models import AuditAction, AuditEvent
from apps.portfolios.models import Position, Trade, TradeCount, TradeSource
from apps.portfolios.services import (
    ERR_BATCH_ITEM,
    ERR_BATCH_REPEATED,
    ERR_EXTERNAL_ID_REUSED,
    id_runs,
    positions_rebuild,
    trade_book,
    trades_book_batch,
)
from tests.factories import AlertRuleFactory, InstrumentFactory, PortfolioFactory, UserFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/trades/batch"
NO_ROLE = "no-role"
NOW = timezone.now().replace(microsecond=0) - dt.timedelta(hours=1)


def client_for(who: str | None) -> APIClient:
    client = APIClient()
    if who == NO_ROLE:
        client.force_authenticate(UserFactory(username="norole"))
    elif who is not None:
        client.force_authenticate(UserFactory(username=f"{who.lower()}-user", role=who))
    return client


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def trade(n: int, **fields) -> dict:
    item = {
        "portfolio": "ALPHA",
        "symbol": "RELIANCE",
        "side": "BUY",
        "quantity": "10",
        "price": "2900.5",
        "traded_at": iso(NOW + dt.timedelta(seconds=n)),
        "external_id": f"OMS-{n}",
    }
    item.update(fields)
    return {k: v for k, v in item.items() if v is not None}


@pytest.fixture
def desk(db):
    return {
        "alpha": PortfolioFactory(code="ALPHA", base_currency="INR"),
        "beta": PortfolioFactory(code="BETA", base_currency="INR"),
        "reliance": InstrumentFactory(symbol="RELIANCE", currency="INR"),
        "tcs": InstrumentFactory(symbol="TCS", currency="INR"),
    }


@pytest.fixture
def analyst_client(desk):
    return client_for(Role.ANALYST)


@pytest.mark.parametrize(
    ("who", "expected"), [(None, 401), (NO_ROLE, 403), (Role.VIEWER, 403), (Role.ANALYST, 200), (Role.ADMIN, 200)]
)
def test_analysts_and_admins_may_book_a_batch_as_they_may_book_a_trade(desk, who, expected):
    response = client_for(who).post(URL, {"trades": [trade(1)]}, format="json")
    assert response.status_code == expected
    assert Trade.objects.count() == (1 if expected == 200 else 0)


def test_get_is_not_allowed_for_anyone_signed_in(desk):
    assert client_for(Role.VIEWER).get(URL).status_code == 405


def test_a_batch_books_every_trade_and_answers_each_by_index(analyst_client, desk):
    response = analyst_client.post(
        URL, [trade(1), trade(2, side="SELL", quantity=4), trade(3, portfolio="beta")], format="json"
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["booked"], body["duplicates"], body["rejected"], body["detail"]) == (3, 0, 0, "")
    assert [r["index"] for r in body["results"]] == [0, 1, 2]
    assert {r["status"] for r in body["results"]} == {"booked"}
    booked = Trade.objects.in_bulk([r["trade_id"] for r in body["results"]])
    assert [booked[r["trade_id"]].external_id for r in body["results"]] == ["OMS-1", "OMS-2", "OMS-3"]
    assert all(t.source == TradeSource.API and t.booked_by.username == "analyst-user" for t in booked.values())
    assert Position.objects.get(portfolio=desk["alpha"]).quantity == 6


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"symbol": "NOPE"}, "symbol", "symbol: No instrument has the symbol NOPE."),
        ({"portfolio": "GHOST"}, "portfolio", "portfolio: No portfolio has the code GHOST."),
        ({"portfolio": None}, "portfolio", "portfolio: This field is required."),
        ({"side": "HOLD"}, "side", "side: Side must be BUY or SELL."),
        ({"quantity": "-1"}, "quantity", "quantity: Quantity must be a finite number greater than zero."),
        ({"quantity": "NaN"}, "quantity", "quantity: Quantity must be a finite number greater than zero."),
        ({"price": "abc"}, "price", "price: Price must be a finite number greater than zero."),
        ({"price": "1.123456789"}, "price", "price: At most 8 decimal places."),
        ({"fees": "-2"}, "fees", "fees: Fees must be a finite number, zero or more."),
        ({"traded_at": "2026-01-01T10:00:00"}, "traded_at", "traded_at: The trade time needs a time zone."),
        ({"traded_at": "yesterday"}, "traded_at", "traded_at: Give an ISO 8601 time with a time zone offset"),
        ({"traded_at": "2999-01-01T00:00:00Z"}, "traded_at", "traded_at: The trade time is in the future."),
        ({"external_id": None}, "external_id", "external_id: An external id is required"),
        ({"external_id": " padded "}, "external_id", "external_id: An external id is required"),
        ({"note": "x" * 501}, "note", "note: At most 500 characters."),
        # PostgreSQL refuses a NUL byte in a query or a row (a 500 there before these were refused).
        ({"symbol": "RELIANCE\x00"}, "symbol", "symbol: No instrument has the symbol RELIANCE\x00."),
        ({"portfolio": "ALPHA\x00"}, "portfolio", "portfolio: No portfolio has the code ALPHA\x00."),
        ({"external_id": "OMS-\x00"}, "external_id", "external_id: An external id is required"),
        ({"note": "a\x00b"}, "note", "note: Must not contain a NUL character."),
    ],
)
def test_each_rejection_names_its_index_and_field_and_the_good_trades_are_booked(
    analyst_client, desk, changes, field, message
):
    response = analyst_client.post(URL, [trade(1), trade(2, **changes)], format="json")
    assert response.status_code == 200
    good, bad = response.json()["results"]
    assert good["status"] == "booked" and bad["status"] == "rejected"
    assert (bad["index"], bad["field"], bad["trade_id"]) == (1, field, None)
    assert bad["message"].startswith(message)
    assert list(Trade.objects.values_list("external_id", flat=True)) == ["OMS-1"]


def test_every_bad_field_of_an_item_is_listed(analyst_client, desk):
    response = analyst_client.post(URL, [trade(1, symbol="NOPE", quantity="0", side="buy")], format="json")
    assert response.status_code == 400
    (item,) = response.json()["results"]
    assert set(item["errors"]) == {"symbol", "side", "quantity"}
    assert item["field"] == "symbol"  # the first in the order fields are listed


def test_an_item_that_is_not_an_object_is_rejected(analyst_client, desk):
    response = analyst_client.post(URL, [trade(1), "OMS-2"], format="json")
    assert response.json()["results"][1] == {
        "index": 1,
        "external_id": "",
        "status": "rejected",
        "trade_id": None,
        "field": "",
        "message": ERR_BATCH_ITEM,
        "errors": {},
    }


def test_a_batch_with_nothing_bookable_is_a_400_that_books_nothing(analyst_client, desk):
    response = analyst_client.post(URL, [trade(1, price="0"), trade(2, symbol="NOPE")], format="json")
    assert response.status_code == 400
    assert response.json()["rejected"] == 2 and not Trade.objects.exists()


@pytest.mark.parametrize("body", [{"orders": []}, {"trades": "x"}, "text", [], {"trades": [], "extra": 1}])
def test_a_malformed_body_is_refused(analyst_client, desk, body):
    response = analyst_client.post(URL, body, format="json")
    assert response.status_code == 400
    assert response.json()["detail"].startswith('Send {"trades"')


def test_a_batch_over_the_limit_is_refused_whole(analyst_client, desk, settings):
    settings.TRADE_MAX_BATCH = 2
    response = analyst_client.post(URL, [trade(1), trade(2), trade(3)], format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == "A batch holds at most 2 trades; this one holds 3. Nothing was booked."
    assert not Trade.objects.exists()


def test_sending_the_same_batch_again_books_nothing_and_names_the_booked_trades(analyst_client, desk):
    batch = [trade(1), trade(2)]
    first = analyst_client.post(URL, batch, format="json").json()
    again = analyst_client.post(URL, batch, format="json").json()
    assert (again["booked"], again["duplicates"]) == (0, 2)
    assert [r["trade_id"] for r in again["results"]] == [r["trade_id"] for r in first["results"]]
    assert Trade.objects.count() == 2 and Position.objects.get(portfolio=desk["alpha"]).quantity == 20


def test_an_external_id_booked_with_other_details_is_rejected(analyst_client, desk):
    trade_book(
        portfolio=desk["alpha"],
        instrument=desk["reliance"],
        side="BUY",
        quantity=Decimal(10),
        price=Decimal("2900.5"),
        traded_at=NOW,
        external_id="OMS-1",
    )
    response = analyst_client.post(URL, [trade(1, quantity="11"), trade(2)], format="json")
    bad = response.json()["results"][0]
    assert (bad["status"], bad["field"]) == ("rejected", "external_id")
    assert bad["errors"] == {"external_id": [ERR_EXTERNAL_ID_REUSED.format(external_id="OMS-1")]}


def test_within_a_batch_the_first_occurrence_of_an_external_id_wins(analyst_client, desk):
    response = analyst_client.post(URL, [trade(1), trade(1), trade(1, quantity="99")], format="json").json()
    first, repeat, clash = response["results"]
    assert first["status"] == "booked" and repeat["status"] == "duplicate"
    assert repeat["trade_id"] == first["trade_id"]
    assert clash["status"] == "rejected"
    assert clash["errors"]["external_id"] == [ERR_BATCH_REPEATED.format(external_id="OMS-1", index=0)]
    assert Trade.objects.count() == 1


def test_positions_equal_a_replay_of_the_trades(analyst_client, desk):
    """Fills that open, add, reduce and flip positions in two portfolios, on top of an existing position."""
    trade_book(
        portfolio=desk["alpha"],
        instrument=desk["tcs"],
        side="SELL",
        quantity=Decimal(5),
        price=Decimal("3500"),
        traded_at=NOW - dt.timedelta(days=1),
        external_id="OLD-1",
        fees=Decimal("1.5"),
    )
    rng = np.random.default_rng(5)
    items = []
    for n in range(300):
        items.append(
            trade(
                n,
                portfolio=str(rng.choice(["ALPHA", "BETA"])),
                symbol=str(rng.choice(["RELIANCE", "TCS"])),
                side=str(rng.choice(["BUY", "SELL"])),
                quantity=f"{rng.integers(1, 2000) / 100:.2f}",
                price=f"{rng.uniform(2500, 3500):.4f}",
                fees=f"{rng.uniform(0, 3):.2f}",
            )
        )
    for start in range(0, 300, 100):
        assert analyst_client.post(URL, items[start : start + 100], format="json").status_code == 200
    stored = {
        (p.portfolio_id, p.instrument_id): (p.quantity, p.average_cost, p.realized_pnl) for p in Position.objects.all()
    }
    replayed = {}
    for portfolio in (desk["alpha"], desk["beta"]):
        for p in positions_rebuild(portfolio=portfolio):
            p.refresh_from_db()
            replayed[(p.portfolio_id, p.instrument_id)] = (p.quantity, p.average_cost, p.realized_pnl)
    assert stored == replayed and len(stored) == 4


def test_the_portfolios_are_locked_in_id_order_and_trades_inserted_in_bulk(analyst_client, desk):
    items = [trade(n, portfolio="BETA" if n % 2 else "ALPHA") for n in range(200)]
    with CaptureQueriesContext(connection) as queries:
        analyst_client.post(URL, items, format="json")
    sql = [q["sql"] for q in queries.captured_queries]
    inserts = sum(s.startswith(('INSERT INTO "portfolios_trade"', 'COPY "portfolios_trade"')) for s in sql)
    assert inserts == 1  # PostgreSQL takes them by COPY, SQLite in one multi-row INSERT (up to 500 rows)
    if connection.vendor == "postgresql":
        # FOR NO KEY UPDATE: a concurrent commit of rows that refer to these portfolios (an evaluation's
        # alerts) checks its foreign keys with FOR KEY SHARE, which this lock does not block.
        (lock,) = [s for s in sql if "FOR NO KEY UPDATE" in s and "portfolios_portfolio" in s]
        assert "ORDER BY" in lock
        # The trades' ids are drawn and the trades inserted under the lock: their ids are the booking order.
        ids = next(n for n, s in enumerate(sql) if "nextval" in s)
        insert = next(n for n, s in enumerate(sql) if s.startswith('COPY "portfolios_trade"'))
        (history,) = [n for n, s in enumerate(sql) if s.startswith('COPY "auditlog_logentry"')]  # the positions'
        assert sql.index(lock) < ids < insert < history


def test_an_external_id_booked_meanwhile_is_found_on_the_retry_with_nothing_of_the_first_attempt_left(
    analyst_client, desk, monkeypatch
):
    """Another booking of the same external id between the batch's check and its insert: the insert fails, the
    second attempt locks the portfolios first and finds it booked."""
    from apps.portfolios import services

    analyst_client.post(URL, [trade(1)], format="json")
    booked = Trade.objects.get(external_id="OMS-1")
    entries = LogEntry.objects.count()
    unseen = services._batch_fresh
    calls = []

    def blind_first(valid, result):  # the first check misses OMS-1, as if it were booked just after
        calls.append(len(valid))
        return list(valid) if len(calls) == 1 else unseen(valid, result)

    monkeypatch.setattr(services, "_batch_fresh", blind_first)
    response = analyst_client.post(URL, [trade(1), trade(2)], format="json")
    assert response.status_code == 200, response.json()
    assert [(r["status"], r["trade_id"]) for r in response.json()["results"]] == [
        ("duplicate", booked.pk),
        ("booked", Trade.objects.get(external_id="OMS-2").pk),
    ]
    assert len(calls) == 2 and Trade.objects.count() == 2
    second = Trade.objects.get(external_id="OMS-2").pk
    event = AuditEvent.objects.filter(action=AuditAction.TRADE_BOOKED).latest("seq")
    assert (event.detail["booked"], event.detail["trade_ids"]) == (1, [[second, second]])
    assert LogEntry.objects.count() == entries + 1  # OMS-2's position update: the failed attempt left none


def test_the_batch_is_audited_as_one_event(analyst_client, desk):
    analyst_client.post(URL, [trade(1), trade(2)], format="json")
    (event,) = AuditEvent.objects.filter(action=AuditAction.TRADE_BOOKED)
    assert event.actor.username == "analyst-user" and event.detail["booked"] == 2
    assert [t["external_id"] for t in event.detail["trades"]] == ["OMS-1", "OMS-2"]


def test_the_booked_trades_are_surveilled_together_after_the_commit(
    analyst_client, desk, django_capture_on_commit_callbacks
):
    AlertRuleFactory(kind=RuleKind.TRADE_VELOCITY, parameters={"max_trades": 3, "window_seconds": 60})
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        analyst_client.post(URL, [trade(n) for n in range(5)], format="json")
    assert not Alert.objects.exists()  # nothing before the commit
    for callback in callbacks:
        callback()
    alert = Alert.objects.get()
    assert alert.count == 2 and alert.figures["value"] == 5  # the 4th trade raised it, the 5th repeated it


@pytest.mark.django_db(transaction=True)
def test_the_answer_says_what_surveilling_the_batch_found(desk):
    AlertRule.objects.all().delete()
    AlertRuleFactory(kind=RuleKind.TRADE_VELOCITY, parameters={"max_trades": 3, "window_seconds": 60})
    response = client_for(Role.ANALYST).post(URL, [trade(n) for n in range(5)], format="json")
    assert response.json()["surveillance"] == {
        "raised": 1,
        "updated": 1,
        "resolved": 0,
        "scored": 0,
        "model_version": None,
        "detector": "No anomaly rule is enabled, so trades are not scored.",
    }


def test_the_answer_is_what_its_documented_serializer_gives(analyst_client, desk, monkeypatch):
    """The view writes the answer's dicts itself (for speed); they must be what the schema's serializer gives."""
    from apps.portfolios.api import batch

    analyst_client.post(URL, [trade(1)], format="json")
    kept = []
    original = batch._answer
    monkeypatch.setattr(batch, "_answer", lambda result: kept.append(result) or original(result))
    response = analyst_client.post(
        URL,
        [trade(1), trade(2, quantity="-1", symbol="NOPE"), trade(3), trade(3, side="SELL")],
        format="json",
    )
    (result,) = kept
    documented = batch.TradeBatchResultSerializer(
        {
            "detail": result.refused,
            "booked": result.booked,
            "duplicates": result.duplicates,
            "rejected": result.rejected,
            "items": result.items,
            "surveillance": batch._surveillance(result),
        }
    ).data
    assert [r["status"] for r in response.json()["results"]] == ["duplicate", "rejected", "booked", "rejected"]
    assert response.json() == documented
    assert response.json()["results"][1]["errors"] == documented["results"][1]["errors"]
    assert set(response.json()["results"][1]["errors"]) == {"quantity", "symbol"}


def test_nothing_is_surveilled_when_the_booking_rolls_back(analyst_client, desk, monkeypatch):
    from apps.portfolios import services

    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(services, "_batch_positions", fail)
    with pytest.raises(RuntimeError):
        analyst_client.post(URL, [trade(1)], format="json")
    assert not Trade.objects.exists() and not Position.objects.exists()


def test_the_schema_documents_the_batch_endpoint(db):
    response = APIClient().get("/api/schema/", {"format": "json"})
    operation = response.json()["paths"]["/api/v1/trades/batch"]["post"]
    assert operation["operationId"] == "trades_batch_create"
    assert set(operation["responses"]) == {"200", "400"}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_over_the_same_portfolios_neither_deadlock_nor_double_book():
    """Four threads send overlapping batches, listing the portfolios in opposite orders, with repeated ids."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks are only exercised on PostgreSQL")
    codes = [f"CC{n}" for n in range(4)]
    portfolios = [PortfolioFactory(code=code) for code in codes]
    InstrumentFactory(symbol="RELIANCE", currency="INR")
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)
    # A content type missing after an earlier transactional test's flush would be created by the first thread
    # inside its transaction, and cached for the others before that transaction commits (or rolls back).
    ContentType.objects.get_for_models(Trade, Position)

    def worker(n: int) -> None:
        try:
            order = codes if n % 2 else codes[::-1]
            items = [trade(k, portfolio=order[k % 4], external_id=f"C-{k}", quantity=str(1 + k % 5)) for k in range(40)]
            barrier.wait()
            trades_book_batch(items=items, source=TradeSource.IMPORT)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert Trade.objects.count() == 40
    created = LogEntry.objects.filter(action=LogEntry.Action.CREATE, content_type__model="trade")
    assert sorted(created.values_list("object_id", flat=True)) == sorted(Trade.objects.values_list("pk", flat=True))
    for portfolio in portfolios:
        stored = {p.instrument_id: p.quantity for p in Position.objects.filter(portfolio=portfolio)}
        assert stored == {p.instrument_id: p.quantity for p in positions_rebuild(portfolio=portfolio)}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_booking_lock_holds_off_other_bookings_but_not_commits_of_rows_that_refer_to_the_portfolio():
    """While a batch holds its portfolios, another process's evaluation commits the alerts it raised on them (their
    foreign keys are checked with FOR KEY SHARE); another booking of the same portfolio waits."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks are only exercised on PostgreSQL")
    from apps.portfolios import services
    from tests.factories import AlertFactory

    portfolio, rule = PortfolioFactory(code="HELD"), AlertRuleFactory()
    locked, release, errors = threading.Event(), threading.Event(), []

    def holder() -> None:
        try:
            with transaction.atomic():
                services._portfolios_lock([portfolio.pk])
                locked.set()
                release.wait(timeout=30)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert locked.wait(timeout=30)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '3s'")
            AlertFactory(rule=rule, portfolio=portfolio)  # its foreign keys are checked at this commit
        with pytest.raises(OperationalError, match="lock timeout"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '200ms'")
            services._portfolios_lock([portfolio.pk])
    finally:
        release.set()
        thread.join(timeout=30)
    assert errors == [] and Alert.objects.filter(portfolio=portfolio).count() == 1


@given(st.lists(st.integers(min_value=1, max_value=60), unique=True))
def test_id_runs_cover_exactly_the_ids_in_maximal_runs(ids):
    runs = id_runs(sorted(ids))
    assert [pk for first, last in runs for pk in range(first, last + 1)] == sorted(ids)
    assert all(first <= last for first, last in runs)
    assert all(later[0] > earlier[1] + 1 for earlier, later in pairwise(runs))  # runs never touch


def test_id_runs_examples():
    assert id_runs([]) == []
    assert id_runs([1, 2, 3, 7, 9, 10]) == [[1, 3], [7, 7], [9, 10]]


def _paused_at_the_lock(monkeypatch, thread: str) -> tuple[threading.Event, threading.Event]:
    """Make the batch booked by the thread of this name stop before it locks its portfolios (the first time): it
    sets the first event there and goes on once the second is set."""
    from apps.portfolios import services

    paused, go = threading.Event(), threading.Event()
    lock = services._portfolios_lock

    def lock_when_told(ids):
        if threading.current_thread().name == thread and not paused.is_set():
            paused.set()
            assert go.wait(timeout=30)
        return lock(ids)

    monkeypatch.setattr(services, "_portfolios_lock", lock_when_told)
    return paused, go


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_batch_and_a_single_booking_of_the_same_external_id_at_once_book_it_once(monkeypatch):
    """The batch finds OMS-1 unbooked, then trade_book books it (committed) before the batch takes its lock: the
    batch's insert meets the unique constraint, and its second attempt finds trade_book's trade."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks are only exercised on PostgreSQL")

    portfolio = PortfolioFactory(code="ALPHA", base_currency="INR")
    instrument = InstrumentFactory(symbol="RELIANCE", currency="INR")
    ContentType.objects.get_for_models(Trade, Position)
    paused, go = _paused_at_the_lock(monkeypatch, "batch")
    outcomes, errors = {}, []

    def run() -> None:
        try:
            outcomes["batch"] = trades_book_batch(items=[trade(1)], source=TradeSource.API)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    batch = threading.Thread(name="batch", target=run)
    batch.start()
    try:
        assert paused.wait(timeout=30)
        single = trade_book(
            portfolio=portfolio,
            instrument=instrument,
            side="BUY",
            quantity="10",
            price="2900.5",
            traded_at=NOW + dt.timedelta(seconds=1),
            external_id="OMS-1",
        )
    finally:
        go.set()
        batch.join(timeout=60)
    assert errors == []
    (booked,) = Trade.objects.filter(external_id="OMS-1")
    assert single.created and single.trade.pk == booked.pk
    assert outcomes["batch"].items[0].status == "duplicate" and outcomes["batch"].items[0].trade_id == booked.pk
    assert dict(TradeCount.objects.values_list("portfolio_id", "trades")) == {portfolio.pk: 1}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_positions_move_in_the_trades_id_order_when_batches_meet(monkeypatch):
    """Booking order is id order (positions_rebuild replays by id): a batch draws its trades' ids only once it
    holds their portfolios. Here batch A pauses at its lock while batch B books the same position whole; average
    cost and realised P&L depend on the order of a sell and a buy, so the stored position must be the replay's."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks are only exercised on PostgreSQL")

    portfolio = PortfolioFactory(code="ALPHA", base_currency="INR")
    InstrumentFactory(symbol="RELIANCE", currency="INR")
    ContentType.objects.get_for_models(Trade, Position)
    trades_book_batch(items=[trade(0, quantity="10", price="50")], source=TradeSource.API)
    paused, b_done = _paused_at_the_lock(monkeypatch, "A")
    errors = []

    def run(items) -> None:
        try:
            trades_book_batch(items=items, source=TradeSource.API)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    a = threading.Thread(name="A", target=run, args=([trade(1, side="SELL", quantity="10", price="100")],))
    a.start()
    try:
        assert paused.wait(timeout=30)
        b = threading.Thread(name="B", target=run, args=([trade(2, side="BUY", quantity="10", price="200")],))
        b.start()
        b.join(timeout=30)
    finally:
        b_done.set()
        a.join(timeout=30)
    assert errors == []
    stored = Position.objects.values("quantity", "average_cost", "realized_pnl").get(portfolio=portfolio)
    (replayed,) = positions_rebuild(portfolio=portfolio)
    assert stored == {
        "quantity": replayed.quantity,
        "average_cost": replayed.average_cost,
        "realized_pnl": replayed.realized_pnl,
    }
