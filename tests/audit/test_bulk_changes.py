"""Business rows written in bulk (QuerySet.update, bulk_create, upserts) get the django-auditlog change history a
save() would give them: the batch booking's positions (and its trades, unless the batch's audit event records
them), the limit-increase expiry and the day roll of ticks into bars, written in bulk too."""

import datetime as dt
from decimal import Decimal

import pytest
from auditlog.context import disable_auditlog, set_actor
from auditlog.models import LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import Role
from apps.alerts import services as alerts
from apps.alerts.models import LimitIncrease, LimitIncreaseStatus, NotificationChannel
from apps.audit.models import AuditAction, AuditEvent
from apps.audit.services import audit_verify, auditlog_changes_record
from apps.market import services as market
from apps.market.models import PriceBar, Tick
from apps.portfolios.models import Position, Trade, TradeSource
from apps.portfolios.services import trades_book_batch
from apps.risk.models import SymbolSignal
from tests.factories import (
    InstrumentFactory,
    LimitIncreaseFactory,
    NotificationChannelFactory,
    PortfolioFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0) - dt.timedelta(hours=1)


def entries(model, action=None):
    found = LogEntry.objects.get_for_model(model)
    return found.filter(action=action) if action is not None else found


# ------------------------------------------------------------------------------ the batch booking


@pytest.fixture
def desk():
    return {
        "alpha": PortfolioFactory(code="ALPHA"),
        "beta": PortfolioFactory(code="BETA"),
        "reliance": InstrumentFactory(symbol="RELIANCE", currency="INR"),
    }


def trade(n: int, portfolio: str = "ALPHA", side: str = "BUY", quantity: str = "10") -> dict:
    at = (NOW + dt.timedelta(seconds=n)).astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    return {
        "portfolio": portfolio,
        "symbol": "RELIANCE",
        "side": side,
        "quantity": quantity,
        "price": "2900.5",
        "traded_at": at,
        "external_id": f"OMS-{n}",
    }


def test_a_batch_records_its_trades_in_its_event_and_gives_each_position_its_change_history(desk):
    analyst = UserFactory(username="batcher", role=Role.ANALYST)
    api = APIClient()
    api.force_authenticate(analyst)
    api.post("/api/v1/trades/batch", [trade(1)], format="json")
    held = Position.objects.get(portfolio=desk["alpha"])
    LogEntry.objects.all().delete()

    response = api.post(
        "/api/v1/trades/batch",
        [trade(2, quantity="5"), trade(3, side="SELL", quantity="3"), trade(4, portfolio="BETA")],
        format="json",
        REMOTE_ADDR="10.9.8.7",
    )
    assert response.status_code == 200, response.content

    # Trades are immutable: the batch's trade_booked event lists each one, and the row holds what was booked.
    assert not entries(Trade).exists()
    booked = sorted(Trade.objects.exclude(external_id="OMS-1").values_list("pk", flat=True))
    event = AuditEvent.objects.filter(action=AuditAction.TRADE_BOOKED).latest("seq")
    assert event.detail["trade_ids"] == [[booked[0], booked[-1]]] and booked[-1] - booked[0] == 2
    assert (event.actor, event.ip) == (analyst, "10.9.8.7")
    (moved,) = entries(Position, LogEntry.Action.UPDATE)
    assert moved.object_pk == str(held.pk)
    assert moved.changes["quantity"] == ["10.00000000", "12.00000000"]
    (new,) = entries(Position, LogEntry.Action.CREATE)
    assert new.object_pk == str(Position.objects.get(portfolio=desk["beta"]).pk)
    assert {e.actor_id for e in LogEntry.objects.all()} == {analyst.pk}
    assert {e.remote_addr for e in LogEntry.objects.all()} == {"10.9.8.7"}


def test_a_batch_from_a_source_without_a_batch_event_gives_each_trade_its_change_history(desk):
    importer = UserFactory(username="importer", role=Role.ANALYST)
    result = trades_book_batch(
        items=[trade(1), trade(2, side="SELL", quantity="3"), trade(3, portfolio="BETA")],
        source=TradeSource.IMPORT,
        booked_by=importer,
    )
    assert [item.status for item in result.items] == ["booked"] * 3
    assert not AuditEvent.objects.filter(action=AuditAction.TRADE_BOOKED).exists()  # the import's own event does
    created = entries(Trade, LogEntry.Action.CREATE)
    assert sorted(created.values_list("object_id", flat=True)) == sorted(Trade.objects.values_list("pk", flat=True))
    sell = created.get(object_repr__startswith="OMS-2").changes
    assert (sell["side"], sell["quantity"]) == (["None", "SELL"], ["None", "3"])  # as trade_book's save records it
    assert {e.actor_id for e in created} == {importer.pk}
    assert entries(Position, LogEntry.Action.CREATE).count() == 2


def test_a_batchs_history_costs_the_same_queries_for_20_trades_or_200(desk):
    api = APIClient()
    api.force_authenticate(UserFactory(role=Role.ANALYST))

    def book(count: int, first: int) -> int:
        items = [trade(first + n, portfolio="BETA" if n % 2 else "ALPHA") for n in range(count)]
        with CaptureQueriesContext(connection) as queries:
            assert api.post("/api/v1/trades/batch", items, format="json").status_code == 200
        return len(queries.captured_queries)

    book(2, 2000)  # the user's permissions and the content types are cached from here on
    assert book(20, 0) == book(200, 1000)
    assert not entries(Trade).exists()
    events = AuditEvent.objects.filter(action=AuditAction.TRADE_BOOKED)
    assert sum(last - first + 1 for e in events for first, last in e.detail["trade_ids"]) == 222
    assert entries(Position, LogEntry.Action.UPDATE).count() == 4


# ------------------------------------------------------------------------------ the limit-increase expiry


def test_expiring_increases_records_each_change_and_workflow_step():
    due = LimitIncreaseFactory(
        requested_at=NOW - dt.timedelta(days=2),
        status=LimitIncreaseStatus.APPROVED,
        decided_by=UserFactory(role=Role.ADMIN),
        decided_at=NOW - dt.timedelta(days=2),
    )
    pending = LimitIncreaseFactory(requested_at=NOW)
    later = NOW + dt.timedelta(days=1, hours=1)
    LogEntry.objects.all().delete()

    assert alerts.limit_increases_expire(now=later) == 2

    for increase in (due, pending):
        (entry,) = LogEntry.objects.get_for_object(increase)
        assert entry.action == LogEntry.Action.UPDATE and entry.actor is None
        assert entry.changes["status"] == [increase.status, LimitIncreaseStatus.EXPIRED]
    steps = AuditEvent.objects.filter(action=AuditAction.LIMIT_INCREASE).order_by("seq")
    assert [(e.object_id, e.detail["step"]) for e in steps] == [(str(due.pk), "expired"), (str(pending.pk), "expired")]
    assert (steps[0].before["status"], steps[0].after["status"]) == ("APPROVED", "EXPIRED")
    assert audit_verify().ok
    assert alerts.limit_increases_expire(now=later) == 0
    assert LogEntry.objects.count() == 2


def test_the_expiry_costs_the_same_queries_for_one_increase_or_ten():
    def expire(count: int, at: dt.datetime):
        for _ in range(count):
            LimitIncreaseFactory(requested_at=at - dt.timedelta(days=2))
        with CaptureQueriesContext(connection) as queries:
            assert alerts.limit_increases_expire(now=at) == count
        return len(queries.captured_queries)

    assert expire(1, NOW) == expire(10, NOW + dt.timedelta(days=3))
    assert LimitIncrease.objects.filter(status=LimitIncreaseStatus.EXPIRED).count() == 11


# ------------------------------------------------------------------------------ the day roll of ticks into bars

MONDAY_NSE_OPEN = dt.datetime(2024, 5, 6, 5, 0, tzinfo=dt.UTC)
MONDAY = dt.date(2024, 5, 6)
EVENING = MONDAY_NSE_OPEN + dt.timedelta(hours=6)


@pytest.fixture
def quiet(monkeypatch):
    monkeypatch.setattr(market, "publish_many", lambda kind, items: None)
    monkeypatch.setattr(market, "_recalculation_request", lambda ids: None)


def test_the_day_roll_records_new_and_changed_bars_and_nothing_when_rolled_again(quiet):
    reliance = InstrumentFactory(symbol="RELIANCE", exchange="NSE")
    tcs = InstrumentFactory(symbol="TCS", exchange="NSE")
    PriceBar.objects.create(instrument=tcs, date=MONDAY, close=Decimal("1"), source="import")
    for instrument, prices in ((reliance, ("2900", "2920")), (tcs, ("3500", "3510"))):
        for hour, price in enumerate(prices):
            Tick.objects.create(instrument=instrument, ts=MONDAY_NSE_OPEN + dt.timedelta(hours=hour), price=price)
    LogEntry.objects.all().delete()

    market.feed_day_roll(day=MONDAY, now=EVENING)

    (created,) = entries(PriceBar, LogEntry.Action.CREATE)
    assert created.object_pk == str(PriceBar.objects.get(instrument=reliance).pk)
    assert created.changes["close"] == ["None", "2920.00000000"]
    (updated,) = entries(PriceBar, LogEntry.Action.UPDATE)
    assert updated.object_pk == str(PriceBar.objects.get(instrument=tcs).pk)
    assert updated.changes["close"] == ["1.00000000", "3510.00000000"]
    assert updated.changes["source"] == ["import", "feed"]
    assert "created_at" not in updated.changes  # the upsert keeps the stored bar's other fields

    market.feed_day_roll(day=MONDAY, now=EVENING)
    assert entries(PriceBar).count() == 2

    Tick.objects.create(instrument=tcs, ts=MONDAY_NSE_OPEN + dt.timedelta(hours=2), price="3490")
    market.feed_day_roll(day=MONDAY, now=EVENING)
    latest = entries(PriceBar, LogEntry.Action.UPDATE).latest("pk")
    assert latest.changes == {"close": ["3510.00000000", "3490.00000000"], "low": ["3500.00000000", "3490.00000000"]}


# ------------------------------------------------------------------------------ the helper itself


def test_the_helper_follows_the_registration_the_actor_in_context_and_a_disabled_log():
    boss = UserFactory(username="boss", role=Role.ADMIN)
    hook = NotificationChannelFactory(kind=NotificationChannel.Kind.WEBHOOK, target="https://hooks.example/secret")
    LogEntry.objects.all().delete()
    moved = NotificationChannel.objects.get(pk=hook.pk)
    moved.target = "https://hooks.example/other-secret"
    signal = SymbolSignal(pk=1)  # computed rows are not registered with auditlog

    with set_actor(boss):
        assert auditlog_changes_record(changes=[(hook, moved), (None, signal)]) == 1
    (entry,) = LogEntry.objects.all()
    assert entry.actor == boss and entry.action == LogEntry.Action.UPDATE
    old, new = entry.changes["target"]
    assert "secret" in old and not old.startswith("https")  # masked as auditlog masks the field
    assert not new.startswith("https")

    with disable_auditlog():
        assert auditlog_changes_record(changes=[(None, hook)]) == 0
    assert auditlog_changes_record(changes=[(hook, NotificationChannel.objects.get(pk=hook.pk))]) == 0
    assert LogEntry.objects.count() == 1
