"""Live recalculation: affected portfolios, coalesced queueing across transactions, the task, the ORM queue.

settings_test runs tasks inline (Q_CLUSTER sync=True). Tests that count queued tasks replace
django_q.tasks.async_task; tests of the queue itself turn sync off, so tasks become OrmQ rows, and then
process them the way a cluster does (dequeue, worker, monitor) in this process.
"""

import datetime as dt
import threading
from decimal import Decimal
from multiprocessing import Queue, Value

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.models import Failure, OrmQ, Success
from django_q.monitor import monitor
from django_q.signing import SignedPackage
from django_q.worker import worker

from apps.market.models import AssetClass
from apps.portfolios.models import Position
from apps.risk import live, services, tasks
from apps.risk.models import PendingDeskRecalculation, PendingRecalculation, RiskSnapshot, Severity, SnapshotKind
from tests.factories import InstrumentFactory, PortfolioFactory
from tests.risk.synthetic import at, book, desk_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def desk():
    return desk_create()


def process_one() -> None:
    """Take the first queued task and run it as a cluster does: pusher (dequeue), worker, monitor (save, ack)."""
    broker = get_broker()
    ack_id, payload = broker.dequeue()[0]
    task = SignedPackage.loads(payload)
    task["ack_id"] = ack_id
    task_queue, result_queue = Queue(), Queue()
    task_queue.put(task)
    task_queue.put("STOP")
    worker(task_queue, result_queue, Value("f", -1))
    result_queue.put("STOP")
    monitor(result_queue, broker)


def retry_due() -> None:
    """Let the queue's locks expire, as they do Q_CLUSTER "retry" seconds after a worker took the task."""
    OrmQ.objects.update(lock=timezone.now() - dt.timedelta(seconds=1))


# ------------------------------------------------------------------------------ affected portfolios


def test_holders_of_an_instrument_are_affected_but_not_closed_or_flat_portfolios(desk):
    reli = desk.instruments["RELI"]
    other = PortfolioFactory(code="OTHER", base_currency="INR")
    book(other, reli, "BUY", 10, 2900, at(desk.dates[-5]), "O1")
    closed = PortfolioFactory(code="CLOSED", base_currency="INR")
    book(closed, reli, "BUY", 10, 2900, at(desk.dates[-5]), "C1")
    closed.is_active = False
    closed.save()
    flat = PortfolioFactory(code="FLAT", base_currency="INR")
    book(flat, reli, "BUY", 10, 2900, at(desk.dates[-5]), "F1")
    book(flat, reli, "SELL", 10, 2950, at(desk.dates[-4]), "F2")
    PortfolioFactory(code="EMPTY")

    assert live.affected_portfolios(instrument_ids=[reli.pk]) == sorted([desk.portfolio.pk, other.pk])
    assert live.affected_portfolios(instrument_ids=[]) == []


def test_holders_of_options_and_futures_on_an_underlying_are_affected(desk):
    nifty = desk.instruments["NIFTY"]
    assert not Position.objects.filter(portfolio=desk.portfolio, instrument=nifty).exists()

    assert live.affected_portfolios(instrument_ids=[nifty.pk]) == [desk.portfolio.pk]


def test_an_fx_pair_affects_portfolios_converting_through_it(desk):
    """USDINR moves the USD holdings (AAPL) of an INR portfolio, and INR holdings of a USD portfolio."""
    usdinr = InstrumentFactory(symbol="USDINR", asset_class=AssetClass.FX, currency="INR")
    eurusd = InstrumentFactory(symbol="EURUSD", asset_class=AssetClass.FX, currency="USD")
    usd_book = PortfolioFactory(code="USDBOOK", base_currency="USD")
    book(usd_book, desk.instruments["RELI"], "BUY", 10, 2900, at(desk.dates[-5]), "U1")
    inr_only = PortfolioFactory(code="INRONLY", base_currency="INR")
    book(inr_only, desk.instruments["RELI"], "BUY", 10, 2900, at(desk.dates[-5]), "I1")

    assert live.affected_portfolios(instrument_ids=[usdinr.pk]) == sorted([desk.portfolio.pk, usd_book.pk])
    assert live.affected_portfolios(instrument_ids=[eurusd.pk]) == []


# ------------------------------------------------------------------------------ coalesced requests


def test_a_burst_of_fifty_requests_in_one_transaction_queues_one_task(desk, queued, django_capture_on_commit_callbacks):
    """Price moves go to the desk run: one task, its token on the "queued" desk row."""
    reli = desk.instruments["RELI"]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        with transaction.atomic():
            for _ in range(50):
                assert live.recalculation_request(instrument_ids=[reli.pk]) == [desk.portfolio.pk]
        assert queued == []  # nothing before the commit
    for callback in callbacks:
        callback()

    pk = desk.portfolio.pk
    token = PendingDeskRecalculation.objects.get(key=live.DESK_QUEUED).token
    assert queued == [
        (
            ("apps.risk.tasks.recalculate_live_desk", token),
            {"task_name": "recalc-desk", "group": "live-recalc", "ack_failure": False},
        )
    ]
    assert list(PendingRecalculation.objects.values_list("portfolio_id", flat=True)) == [pk]


def test_with_a_threshold_a_few_price_moves_get_a_task_each(desk, queued, settings, django_capture_on_commit_callbacks):
    settings.RISK_LIVE_DESK_THRESHOLD = 1
    pk = desk.portfolio.pk
    with django_capture_on_commit_callbacks(execute=True):
        live.recalculation_request(instrument_ids=[desk.instruments["RELI"].pk])
    assert queued == [
        (
            ("apps.risk.tasks.recalculate_live", pk),
            {"task_name": f"recalc-{pk}", "group": "live-recalc", "ack_failure": False},
        )
    ]
    assert not PendingDeskRecalculation.objects.exists()


def test_a_request_while_one_is_pending_queues_nothing_and_after_the_start_queues_again(
    desk, queued, published, django_capture_on_commit_callbacks
):
    pk = desk.portfolio.pk
    with django_capture_on_commit_callbacks(execute=True):
        live.recalculation_request(portfolio_ids=[pk])
    with django_capture_on_commit_callbacks(execute=True):
        live.recalculation_request(portfolio_ids=[pk])
    assert len(queued) == 1

    tasks.recalculate_live(pk)  # the queued task starts: its mark goes
    assert not PendingRecalculation.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        live.recalculation_request(portfolio_ids=[pk])
    assert len(queued) == 2


def test_a_mark_older_than_the_ttl_is_taken_as_lost_and_replaced(desk, queued, django_capture_on_commit_callbacks):
    pk = desk.portfolio.pk
    PendingRecalculation.objects.create(portfolio_id=pk, requested_at=timezone.now() - live.PENDING_TTL * 2)
    with django_capture_on_commit_callbacks(execute=True):
        live.recalculation_request(portfolio_ids=[pk])
    assert len(queued) == 1
    assert PendingRecalculation.objects.get().requested_at > timezone.now() - dt.timedelta(minutes=1)


def test_a_rolled_back_transaction_requests_nothing(desk, queued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        live.recalculation_request(portfolio_ids=[desk.portfolio.pk])
        raise RuntimeError("rolled back")
    assert queued == []
    assert not PendingRecalculation.objects.exists()


def test_closed_and_unknown_portfolios_are_not_requested(queued, django_capture_on_commit_callbacks):
    closed = PortfolioFactory(code="CLOSED", is_active=False)
    with django_capture_on_commit_callbacks(execute=True):
        assert live.recalculation_request(portfolio_ids=[closed.pk, 999_999]) == []
    assert queued == []


def test_a_failure_to_queue_does_not_reach_the_caller(desk, monkeypatch, django_capture_on_commit_callbacks):
    def broken(*args, **kwargs):
        raise ConnectionError("database gone")

    monkeypatch.setattr("django_q.tasks.async_task", broken)
    with django_capture_on_commit_callbacks(execute=True):
        live.recalculation_request(portfolio_ids=[desk.portfolio.pk])
    assert not PendingRecalculation.objects.exists()  # the mark went back with the failed enqueue


def test_booking_a_trade_requests_its_portfolio_and_a_resent_trade_does_not(
    desk, queued, django_capture_on_commit_callbacks
):
    reli = desk.instruments["RELI"]
    with django_capture_on_commit_callbacks(execute=True):
        result = book(desk.portfolio, reli, "BUY", 5, 2900, at(desk.dates[-2]), "LIVE1")
    assert result.created
    assert [args for args, _ in queued] == [("apps.risk.tasks.recalculate_live", desk.portfolio.pk)]

    PendingRecalculation.objects.all().delete()
    with django_capture_on_commit_callbacks(execute=True):
        again = book(desk.portfolio, reli, "BUY", 5, 2900, at(desk.dates[-2]), "LIVE1")
    assert not again.created
    assert len(queued) == 1


# ------------------------------------------------------------------------------ the task


def test_recalculate_live_stores_an_intraday_snapshot_and_publishes_a_risk_update(desk, published):
    pk = desk.portfolio.pk
    before = RiskSnapshot.objects.get(pk=tasks.recalculate_portfolio(pk, kind=SnapshotKind.SCHEDULED))
    PendingRecalculation.objects.create(portfolio_id=pk, requested_at=timezone.now())

    snapshot_id = tasks.recalculate_live(pk)

    snapshot = RiskSnapshot.objects.get(pk=snapshot_id)
    assert snapshot.kind == SnapshotKind.INTRADAY and snapshot.portfolio_id == pk
    assert not PendingRecalculation.objects.exists()
    assert published == [
        (
            "risk_update",
            {
                "portfolio_id": pk,
                "portfolio_code": "DESK",
                "snapshot_id": snapshot.pk,
                "as_of": snapshot.as_of.isoformat(),
                "market_value": float(snapshot.market_value),
                "var": float(snapshot.var),
                "es": float(snapshot.es),
                "confidence": snapshot.confidence,
                "risk_score": snapshot.risk_score,
                "severity": snapshot.severity,
                "previous_severity": before.severity,
                "base_currency": "INR",
            },
        )
    ]
    assert snapshot.severity in Severity.values


def test_a_first_snapshot_has_no_previous_severity_and_a_second_run_is_harmless(desk, published):
    first = tasks.recalculate_live(desk.portfolio.pk)
    second = tasks.recalculate_live(desk.portfolio.pk)
    assert first != second
    assert published[0][1]["previous_severity"] is None
    assert published[1][1]["previous_severity"] == published[0][1]["severity"]
    assert RiskSnapshot.objects.filter(kind=SnapshotKind.INTRADAY).count() == 2


def test_closed_and_missing_portfolios_are_skipped(published):
    closed = PortfolioFactory(code="CLOSED", is_active=False)
    assert tasks.recalculate_live(closed.pk) is None
    assert tasks.recalculate_live(999_999) is None
    assert published == [] and not RiskSnapshot.objects.exists()


def test_a_failing_calculation_raises(desk, published, monkeypatch):
    def broken(**kwargs):
        raise FloatingPointError("engine blew up")

    monkeypatch.setattr(services, "risk_snapshot_create", broken)
    PendingRecalculation.objects.create(portfolio_id=desk.portfolio.pk, requested_at=timezone.now())

    with pytest.raises(FloatingPointError):
        tasks.recalculate_live(desk.portfolio.pk)
    assert published == []
    assert not PendingRecalculation.objects.exists()  # the next request queues a fresh run


def test_a_request_runs_the_task_after_commit_when_tasks_run_inline(
    desk, published, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        live.recalculation_request(instrument_ids=[desk.instruments["AAPL"].pk])
    snapshot = RiskSnapshot.objects.get(portfolio=desk.portfolio, kind=SnapshotKind.INTRADAY)
    assert snapshot.config["live"] is True
    assert Success.objects.filter(name="recalc-desk").exists()
    assert [(event_type, data["snapshot_id"]) for event_type, data in published] == [("risk_update", snapshot.pk)]
    assert not PendingRecalculation.objects.exists() and not PendingDeskRecalculation.objects.exists()


# ------------------------------------------------------------------------------ the ORM queue


def test_a_queued_task_survives_a_killed_worker_and_is_run_by_the_next(
    desk, published, no_sync, django_capture_on_commit_callbacks
):
    """The task is an OrmQ row: a worker that took it and died leaves it, locked until "retry" has passed."""
    pk = desk.portfolio.pk
    with django_capture_on_commit_callbacks(execute=True):
        live.recalculation_request(portfolio_ids=[pk])
    assert OrmQ.objects.count() == 1
    assert PendingRecalculation.objects.filter(portfolio_id=pk).exists()
    no_sync()

    taken = get_broker().dequeue()  # a worker takes it ... and is killed before running it
    assert len(taken) == 1
    assert OrmQ.objects.count() == 1 and get_broker().dequeue() is None  # locked, not lost
    retry_due()
    process_one()

    assert OrmQ.objects.count() == 0  # acknowledged
    assert Success.objects.filter(name=f"recalc-{pk}").count() == 1
    assert RiskSnapshot.objects.filter(portfolio_id=pk, kind=SnapshotKind.INTRADAY).count() == 1
    assert not PendingRecalculation.objects.exists()
    assert [event_type for event_type, _ in published] == ["risk_update"]


def test_a_failing_task_is_recorded_and_retried_up_to_max_attempts(
    desk, published, no_sync, monkeypatch, django_capture_on_commit_callbacks
):
    def broken(**kwargs):
        raise FloatingPointError("engine blew up")

    monkeypatch.setattr(services, "risk_snapshot_create", broken)
    with django_capture_on_commit_callbacks(execute=True):
        live.recalculation_request(portfolio_ids=[desk.portfolio.pk])
    no_sync()

    for attempt in range(1, Conf.MAX_ATTEMPTS + 1):
        assert OrmQ.objects.count() == 1  # not acknowledged: it comes back after "retry"
        retry_due()
        process_one()
        failure = Failure.objects.get(name=f"recalc-{desk.portfolio.pk}")
        assert failure.attempt_count == attempt
        assert "engine blew up" in failure.result
    assert OrmQ.objects.count() == 0  # given up after max_attempts
    assert published == []


def test_a_trade_and_a_tick_burst_in_one_transaction_leave_one_queued_row(
    desk, no_sync, django_capture_on_commit_callbacks
):
    reli = desk.instruments["RELI"]
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        book(desk.portfolio, reli, "BUY", Decimal("1"), 2900, at(desk.dates[-2]), "LIVE2")
        for _ in range(10):
            live.recalculation_request(instrument_ids=[reli.pk])
    assert OrmQ.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_from_many_connections_queue_one_task(queued):
    """Eight connections (as web, feed and worker processes would) ask at once: exactly one queues."""
    if connection.vendor != "postgresql":
        pytest.skip("concurrent connections are only exercised on PostgreSQL")
    portfolio = PortfolioFactory(code="CONC")
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def ask() -> None:
        try:
            barrier.wait()
            live.recalculation_request(portfolio_ids=[portfolio.pk])  # autocommit: queued at once
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert [args for args, _ in queued] == [("apps.risk.tasks.recalculate_live", portfolio.pk)]
    assert PendingRecalculation.objects.filter(portfolio=portfolio).count() == 1


def test_a_live_recalculation_checks_the_portfolios_limit_rules_and_a_failing_check_does_not_fail_it(
    desk, published, monkeypatch
):
    import apps.alerts.services as alert_services

    checked = []
    monkeypatch.setattr(alert_services, "evaluate_portfolio_risk", lambda **kwargs: checked.append(kwargs))
    assert tasks.recalculate_live(desk.portfolio.pk) is not None
    assert checked == [{"portfolio_ids": [desk.portfolio.pk]}]

    def broken(**kwargs):
        raise RuntimeError("rules unavailable")

    monkeypatch.setattr(alert_services, "evaluate_portfolio_risk", broken)
    assert tasks.recalculate_live(desk.portfolio.pk) is not None
    assert len(published) == 2
