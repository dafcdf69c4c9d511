"""The desk run (apps.risk.live): one coalesced task for a tick that moves many portfolios, what it takes when it
starts, that a crashed run is retried with what it took, that runs compute one at a time, and the ORM queue."""

import threading

import pytest
from django.core.cache import cache
from django.db import connection, connections
from django.utils import timezone
from django_q.models import OrmQ, Success

from apps.portfolios.models import Portfolio
from apps.risk import live, services, tasks
from apps.risk.models import PendingDeskRecalculation, PendingRecalculation, RiskSnapshot, SnapshotKind
from tests.factories import PortfolioFactory
from tests.risk.synthetic import at, book, desk_create
from tests.risk.test_live import process_one

pytestmark = pytest.mark.django_db

CLIENTS = 12


@pytest.fixture
def desk():
    """The synthetic desk and a dozen client accounts holding its RELI (a tick on RELI moves them all)."""
    desk = desk_create()
    reli = desk.instruments["RELI"]
    for n in range(CLIENTS):
        client = PortfolioFactory(code=f"CL{n:02d}", base_currency="INR")
        book(client, reli, "BUY", 10 + n, desk.closes["RELI"][-30], at(desk.dates[-30]), f"C{n}")
    return desk


def mass_tick(desk, callbacks) -> list[int]:
    with callbacks(execute=True):
        return live.recalculation_request(instrument_ids=[desk.instruments["RELI"].pk])


def desk_tasks(queued_calls) -> list[str]:
    """Return the tokens of the desk tasks queued (and fail on any per-portfolio task)."""
    assert all(args[0] == live.DESK_TASK_FUNC for args, _ in queued_calls), queued_calls
    return [args[1] for args, _ in queued_calls]


def test_a_tick_moving_every_portfolio_queues_one_desk_task(desk, queued, django_capture_on_commit_callbacks):
    ids = mass_tick(desk, django_capture_on_commit_callbacks)

    assert len(ids) == CLIENTS + 1
    (token,) = desk_tasks(queued)
    assert PendingDeskRecalculation.objects.get(key=live.DESK_QUEUED).token == token
    assert sorted(PendingRecalculation.objects.values_list("portfolio_id", flat=True)) == ids


def test_requests_while_the_desk_run_is_queued_queue_nothing_more(desk, queued, django_capture_on_commit_callbacks):
    mass_tick(desk, django_capture_on_commit_callbacks)
    newcomer = PortfolioFactory(code="LATE", base_currency="INR")
    book(newcomer, desk.instruments["AAPL"], "BUY", 5, desk.closes["AAPL"][-3], at(desk.dates[-3]), "L1")
    queued.clear()  # the booking above asked for its own portfolio: covered by the queued desk run
    for _ in range(5):
        mass_tick(desk, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        live.recalculation_request(instrument_ids=[desk.instruments["AAPL"].pk])

    assert queued == []
    assert PendingDeskRecalculation.objects.count() == 1
    assert PendingRecalculation.objects.filter(portfolio=newcomer).exists()  # the queued run will take it


def test_the_desk_run_takes_every_pending_portfolio_and_a_request_after_its_start_queues_one_more(
    desk, queued, published, django_capture_on_commit_callbacks
):
    ids = mass_tick(desk, django_capture_on_commit_callbacks)
    (token,) = desk_tasks(queued)

    done = tasks.recalculate_live_desk(token)

    assert sorted(done) == ids
    snapshots = RiskSnapshot.objects.filter(kind=SnapshotKind.INTRADAY)
    assert sorted(snapshots.values_list("portfolio_id", flat=True)) == ids
    assert not PendingRecalculation.objects.exists() and not PendingDeskRecalculation.objects.exists()
    assert sorted(data["portfolio_id"] for _, data in published) == ids
    assert {data["snapshot_id"] for _, data in published} == set(snapshots.values_list("pk", flat=True))
    # Run again (a retry, or the same task twice): nothing is pending, nothing is done.
    assert tasks.recalculate_live_desk(token) == []

    mass_tick(desk, django_capture_on_commit_callbacks)
    assert len(desk_tasks(queued)) == 2  # exactly one more run


def test_risk_updates_carry_each_portfolios_previous_severity(
    desk, queued, published, django_capture_on_commit_callbacks
):
    first = Portfolio.objects.get(code="CL00")
    before = services.risk_snapshot_create(portfolio=first, kind=SnapshotKind.SCHEDULED)
    mass_tick(desk, django_capture_on_commit_callbacks)
    tasks.recalculate_live_desk(desk_tasks(queued)[0])

    previous = {data["portfolio_code"]: data["previous_severity"] for _, data in published}
    assert previous.pop("CL00") == before.severity
    assert set(previous.values()) == {None}  # first snapshots
    severity = {data["portfolio_code"]: data["severity"] for _, data in published}
    published.clear()
    mass_tick(desk, django_capture_on_commit_callbacks)
    tasks.recalculate_live_desk(desk_tasks(queued)[1])
    assert {data["portfolio_code"]: data["previous_severity"] for _, data in published} == severity


def test_a_run_that_crashed_is_retried_with_the_portfolios_it_took(
    desk, queued, published, monkeypatch, django_capture_on_commit_callbacks
):
    ids = mass_tick(desk, django_capture_on_commit_callbacks)
    (token,) = desk_tasks(queued)
    real = services.risk_live_recalculate

    def crash(**kwargs):
        raise MemoryError("worker killed")

    monkeypatch.setattr(services, "risk_live_recalculate", crash)
    with pytest.raises(MemoryError):
        tasks.recalculate_live_desk(token)
    # The marks were taken (a request from now on queues a new run), but the run keeps what it took.
    assert not PendingRecalculation.objects.exists()
    assert PendingDeskRecalculation.objects.get(key=live.desk_run_key(token)).portfolio_ids == ids
    assert cache.get(live.DESK_TURN_KEY) is None  # its turn ended with it

    monkeypatch.setattr(services, "risk_live_recalculate", real)
    assert sorted(tasks.recalculate_live_desk(token)) == ids  # the retry
    assert not PendingDeskRecalculation.objects.exists()
    assert sorted(data["portfolio_id"] for _, data in published) == ids


def test_a_desk_run_waits_for_the_running_one_before_it_starts(
    desk, queued, monkeypatch, django_capture_on_commit_callbacks
):
    """Runs compute one at a time; the waiting one is still queued, so requests meanwhile add to it."""
    mass_tick(desk, django_capture_on_commit_callbacks)
    (token,) = desk_tasks(queued)
    cache.set(live.DESK_TURN_KEY, "another-run", timeout=60)
    looks: list[bool] = []

    def sleep(seconds: float) -> None:
        looks.append(PendingDeskRecalculation.objects.filter(key=live.DESK_QUEUED).exists())
        if len(looks) == 3:
            cache.delete(live.DESK_TURN_KEY)  # the running one finishes

    monkeypatch.setattr(live.time, "sleep", sleep)
    monkeypatch.setattr(live, "publish_many", lambda *args: None, raising=False)
    tasks.recalculate_live_desk(token)

    assert looks == [True, True, True]  # not started while it waited
    assert not PendingDeskRecalculation.objects.exists()
    assert RiskSnapshot.objects.filter(kind=SnapshotKind.INTRADAY).count() == CLIENTS + 1


def test_concurrent_turns_go_one_at_a_time():
    """Of two runs asking for the turn at once, one gets it; the other waits until it is released."""
    cache.delete(live.DESK_TURN_KEY)
    order: list[str] = []
    first_has_it = threading.Event()
    release = threading.Event()

    def first() -> None:
        live._desk_turn("first")
        order.append("first")
        first_has_it.set()
        release.wait(5)
        live._desk_turn_end("first")

    thread = threading.Thread(target=first)
    thread.start()
    first_has_it.wait(5)
    release.set()
    live._desk_turn("second")
    order.append("second")
    live._desk_turn_end("second")
    thread.join(5)
    assert order == ["first", "second"]
    assert cache.get(live.DESK_TURN_KEY) is None


def test_a_trade_still_gets_a_full_snapshot_of_its_own(desk, queued, django_capture_on_commit_callbacks):
    client = Portfolio.objects.get(code="CL03")
    with django_capture_on_commit_callbacks(execute=True):
        book(client, desk.instruments["AAPL"], "BUY", 3, desk.closes["AAPL"][-2], at(desk.dates[-2]), "T9")
    assert [args for args, _ in queued] == [(live.TASK_FUNC, client.pk)]


def test_many_position_changes_at_once_go_to_the_desk_run(
    desk, queued, monkeypatch, django_capture_on_commit_callbacks
):
    """An import that changes many portfolios' positions: one desk run rather than a full snapshot each."""
    monkeypatch.setattr(live, "FULL_LIMIT", 5)
    ids = list(Portfolio.objects.values_list("pk", flat=True))
    with django_capture_on_commit_callbacks(execute=True):
        live.recalculation_request(portfolio_ids=ids)
    assert len(desk_tasks(queued)) == 1
    assert PendingRecalculation.objects.count() == len(ids)


def test_a_mark_of_a_lost_desk_run_is_replaced(desk, queued, django_capture_on_commit_callbacks):
    PendingDeskRecalculation.objects.create(
        key=live.DESK_QUEUED, token="lost", requested_at=timezone.now() - live.PENDING_TTL * 2
    )
    mass_tick(desk, django_capture_on_commit_callbacks)
    (token,) = desk_tasks(queued)
    assert token != "lost" and PendingDeskRecalculation.objects.get(key=live.DESK_QUEUED).token == token


def test_through_the_orm_queue_a_mass_tick_is_one_row_and_one_run(
    desk, published, no_sync, django_capture_on_commit_callbacks
):
    ids = mass_tick(desk, django_capture_on_commit_callbacks)
    mass_tick(desk, django_capture_on_commit_callbacks)
    assert OrmQ.objects.count() == 1
    no_sync()

    process_one()

    assert OrmQ.objects.count() == 0
    assert Success.objects.filter(name="recalc-desk").count() == 1
    assert sorted(RiskSnapshot.objects.filter(kind=SnapshotKind.INTRADAY).values_list("portfolio_id", flat=True)) == ids
    assert sorted(data["portfolio_id"] for _, data in published) == ids


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_mass_requests_from_many_connections_queue_one_desk_task(queued):
    """Eight connections (web, feed and worker processes) ask at once for many portfolios: one desk task."""
    if connection.vendor != "postgresql":
        pytest.skip("concurrent connections are only exercised on PostgreSQL")
    portfolios = [PortfolioFactory(code=f"CONC{n}") for n in range(6)]
    ids = [p.pk for p in portfolios]
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def ask(n: int) -> None:
        try:
            barrier.wait()
            # Each asks for an overlapping set, as ticks on shared instruments would.
            live._enqueue(ids[n % 3 :], positions_changed=())
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert len(desk_tasks(queued)) == 1
    assert sorted(PendingRecalculation.objects.values_list("portfolio_id", flat=True)) == ids
    assert PendingDeskRecalculation.objects.filter(key=live.DESK_QUEUED).count() == 1


def test_a_big_run_is_split_over_the_workers_and_every_shard_is_computed(
    desk, queued, published, monkeypatch, settings, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(live, "DESK_SHARD_MIN", 4)
    settings.RISK_LIVE_DESK_SHARDS = 2
    ids = mass_tick(desk, django_capture_on_commit_callbacks)
    (token,) = desk_tasks(queued)
    queued.clear()

    own = tasks.recalculate_live_desk(token)

    # The other shard was queued, in the transaction that took the marks, with its portfolios as arguments.
    ((func, part), kwargs) = queued[0]
    assert func == live.DESK_PART_FUNC and kwargs["task_name"] == "recalc-desk-part"
    assert sorted(own + part) == ids and not set(own) & set(part)
    assert len(queued) == 1
    assert sorted(tasks.recalculate_live_desk_part(part)) == sorted(part)
    assert sorted(data["portfolio_id"] for _, data in published) == ids
    # Each shard queued one evaluation of its portfolios' limit rules.
    assert sorted(sorted(args[1]) for args, _ in queued.alerts) == sorted([sorted(own), sorted(part)])
    assert not PendingRecalculation.objects.exists() and not PendingDeskRecalculation.objects.exists()


def test_the_turn_of_a_killed_run_expires_and_a_running_one_keeps_it(
    desk, queued, published, monkeypatch, django_capture_on_commit_callbacks
):
    """The turn is held for DESK_TURN_SECONDS and renewed at each step of the pass; a killed run's lapses."""
    mass_tick(desk, django_capture_on_commit_callbacks)
    (token,) = desk_tasks(queued)
    renewed = []
    real_renew = live._desk_turn_renew
    monkeypatch.setattr(live, "_desk_turn_renew", lambda t: renewed.append(t) or real_renew(t))
    added = []
    real_add = cache.add
    monkeypatch.setattr(
        cache, "add", lambda key, value, timeout=None: added.append(timeout) or real_add(key, value, timeout)
    )

    tasks.recalculate_live_desk(token)

    assert added == [live.DESK_TURN_SECONDS]  # not the task timeout: a killed run blocks the next one briefly
    assert renewed == [token] * 3  # after the inputs, the engine and the rows
    assert cache.get(live.DESK_TURN_KEY) is None
