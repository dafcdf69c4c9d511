"""GET /api/v1/health: the database, the channel layer, the worker and the feed, without authentication."""

import asyncio
import datetime as dt
import uuid

import pytest
from django.core.cache import cache
from django.db import OperationalError
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.models import OrmQ, Schedule, Task
from django_q.signing import SignedPackage
from django_q.status import Stat, Status
from rest_framework.test import APIClient

from riskradar import health

URL = "/api/v1/health"


@pytest.fixture(autouse=True)
def empty_cache():
    """The worker heartbeat lives in the cache, which outlives a test unless cleared."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def schedules_not_yet_due(request):
    """The migration's schedules are due from when the test database was made, which a long run leaves behind."""
    if request.node.get_closest_marker("django_db") is None:
        return
    request.getfixturevalue("db")
    Schedule.objects.update(next_run=timezone.now() + dt.timedelta(minutes=5))


@pytest.fixture
def running_worker(db):
    """Publish a cluster heartbeat the way a running qcluster does, and keep its schedules on time."""
    status = Status(pid=1234, cluster_id="test-cluster")
    status.status = "Idle"
    get_broker().set_stat(Stat.get_key("test-cluster"), SignedPackage.dumps(status, True), 30)
    Schedule.objects.update(next_run=timezone.now() + dt.timedelta(minutes=15))


@pytest.fixture
def feed_alive(db):
    """The demo feed process reported a moment ago."""
    from apps.market.services import feed_heartbeat

    feed_heartbeat()


def task_create(*, success: bool, stopped: dt.datetime) -> Task:
    return Task.objects.create(
        id=uuid.uuid4().hex,
        name=f"task-{uuid.uuid4().hex[:8]}",
        func="apps.risk.tasks.recalculate_live",
        started=stopped - dt.timedelta(seconds=1),
        stopped=stopped,
        success=success,
        result="boom",
    )


class BrokenCursor:
    def __enter__(self):
        raise OperationalError("connection to server at 10.0.0.5 failed")

    def __exit__(self, *exc):
        return False


class BrokenConnection:
    vendor = "postgresql"

    def cursor(self):
        return BrokenCursor()


class DeadLayer:
    async def send(self, channel, message):
        raise ConnectionError("Error 111 connecting to redis:6379")

    async def receive(self, channel):
        raise AssertionError("not reached")


class SilentLayer:
    async def send(self, channel, message):
        return None

    async def receive(self, channel):
        await asyncio.sleep(60)


@pytest.mark.django_db
def test_without_a_worker_the_service_is_degraded():
    """In tests no qcluster runs: database and channel layer pass, the worker check fails, 503."""
    response = APIClient().get(URL)

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["version"] not in ("", "unknown")
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["channel_layer"] == {"ok": True, "detail": "round trip completed"}
    assert body["checks"]["worker"] == {
        "ok": False,
        "clusters": 0,
        "queued_tasks": 0,
        "failed_last_24h": 0,
        "overdue_schedules": 0,
        "detail": "no worker cluster is running",
    }


@pytest.mark.django_db
def test_with_a_running_worker_everything_is_ok(running_worker, feed_alive):
    OrmQ.objects.create(key="riskradar", payload="x", lock=timezone.now())

    response = APIClient().get(URL)

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["worker"] == {
        "ok": True,
        "clusters": 1,
        "queued_tasks": 1,
        "failed_last_24h": 0,
        "overdue_schedules": 0,
        "detail": "Idle",
    }


@pytest.mark.django_db
def test_health_needs_no_authentication_and_ignores_a_bad_token(running_worker, feed_alive):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    assert client.get(URL).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_health_is_read_only(method):
    assert getattr(APIClient(), method)(URL).status_code == 405


@pytest.mark.django_db
def test_a_broken_database_is_reported_without_its_details(running_worker, monkeypatch):
    monkeypatch.setattr(health, "connection", BrokenConnection())

    response = APIClient().get(URL)

    assert response.status_code == 503
    database = response.json()["checks"]["database"]
    assert database == {"ok": False, "detail": "database check failed (OperationalError)"}
    assert "10.0.0.5" not in response.content.decode()
    assert response.json()["checks"]["channel_layer"]["ok"] is True


@pytest.mark.django_db
def test_a_dead_channel_layer_is_reported(running_worker, monkeypatch):
    monkeypatch.setattr(health, "get_channel_layer", DeadLayer)

    response = APIClient().get(URL)

    assert response.status_code == 503
    assert response.json()["checks"]["channel_layer"] == {
        "ok": False,
        "detail": "channel layer check failed (ConnectionError)",
    }
    assert response.json()["checks"]["database"]["ok"] is True


@pytest.mark.django_db
def test_a_channel_layer_that_never_answers_times_out(running_worker, monkeypatch):
    monkeypatch.setattr(health, "get_channel_layer", SilentLayer)
    monkeypatch.setattr(health, "CHANNEL_TIMEOUT_SECONDS", 0.1)

    response = APIClient().get(URL)

    assert response.status_code == 503
    assert response.json()["checks"]["channel_layer"] == {"ok": False, "detail": "no answer within 0.1 s"}


@pytest.mark.django_db
def test_an_unreachable_cache_fails_the_worker_check(monkeypatch):
    def unreachable(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(Stat, "get_all", unreachable)
    assert health.check_worker() == {"ok": False, "detail": "worker check failed (ConnectionError)"}


@pytest.mark.django_db
def test_tasks_failed_in_the_last_day_are_counted_without_degrading(running_worker, feed_alive):
    now = timezone.now()
    task_create(success=False, stopped=now - dt.timedelta(minutes=5))
    task_create(success=False, stopped=now - dt.timedelta(hours=23))
    task_create(success=False, stopped=now - dt.timedelta(hours=25))
    task_create(success=True, stopped=now - dt.timedelta(minutes=5))

    response = APIClient().get(URL)

    assert response.status_code == 200, response.json()
    worker = response.json()["checks"]["worker"]
    assert worker["ok"] is True and worker["failed_last_24h"] == 2


@pytest.mark.django_db
def test_a_schedule_overdue_by_more_than_thirty_minutes_degrades_the_worker(running_worker):
    """A cluster that is up but whose scheduler has stopped: the heartbeat alone would look healthy."""
    Schedule.objects.create(
        name="late",
        func="apps.risk.tasks.recalculate_all",
        schedule_type=Schedule.MINUTES,
        minutes=15,
        repeats=-1,
        next_run=timezone.now() - dt.timedelta(minutes=31),
    )
    Schedule.objects.create(
        name="done",
        func="apps.risk.tasks.recalculate_all",
        schedule_type=Schedule.ONCE,
        repeats=0,
        next_run=timezone.now() - dt.timedelta(days=3),
    )
    Schedule.objects.create(
        name="just late",
        func="apps.risk.tasks.recalculate_all",
        schedule_type=Schedule.MINUTES,
        minutes=15,
        repeats=-1,
        next_run=timezone.now() - dt.timedelta(minutes=20),
    )

    response = APIClient().get(URL)

    assert response.status_code == 503
    worker = response.json()["checks"]["worker"]
    assert worker["ok"] is False and worker["overdue_schedules"] == 1
    assert worker["detail"] == health.SCHEDULER_STALE.format(count=1, minutes=30)
    assert response.json()["checks"]["database"]["ok"] is True


# ------------------------------------------------------------------------------ the feed


def feed_check(**state) -> dict:
    from apps.market.services import feed_state

    feed = feed_state()
    for field, value in state.items():
        setattr(feed, field, value)
    feed.save()
    return health.check_feed()


@pytest.mark.django_db
def test_a_demo_feed_is_healthy_while_its_heartbeat_is_fresh(running_worker):
    now = timezone.now()
    fresh = feed_check(active_feed="demo", heartbeat_at=now - dt.timedelta(seconds=30), stale_after_seconds=120)
    assert fresh["ok"] and fresh["detail"] == "heartbeat 30 s ago"
    silent = feed_check(heartbeat_at=now - dt.timedelta(minutes=10))
    assert not silent["ok"] and silent["detail"] == "the Demo simulator feed has not reported for 10 min"
    never = feed_check(heartbeat_at=None)
    assert not never["ok"] and "never reported" in never["detail"]
    response = APIClient().get(URL)
    assert response.status_code == 503 and response.json()["checks"]["feed"]["ok"] is False


@pytest.mark.django_db
def test_an_external_feed_is_judged_by_its_newest_tick_while_a_market_is_open():
    from apps.market.models import FeedState
    from tests.factories import InstrumentFactory, TickFactory

    btc = InstrumentFactory(symbol="BTC-USD", asset_class="crypto", exchange="CRYPTO", currency="USD")
    FeedState.get_solo().watched.set([btc])
    now = timezone.now()
    assert feed_check(active_feed="external", stale_after_seconds=120)["detail"].startswith("no tick for ever")
    TickFactory(instrument=btc, ts=now - dt.timedelta(minutes=5))
    stale = feed_check()
    assert not stale["ok"] and stale["detail"] == "no tick for 5 min while CRYPTO open"
    TickFactory(instrument=btc, ts=now - dt.timedelta(seconds=10))
    assert feed_check() == {
        "ok": True,
        "detail": "newest tick 10 s ago",
        "feed": "external",
        "stale_after_seconds": 120.0,
        "newest_tick_age_seconds": pytest.approx(10, abs=2),
    }


@pytest.mark.django_db
def test_an_external_feed_may_be_silent_while_every_market_is_closed(monkeypatch):
    from apps.market.feeds import hours
    from apps.market.models import FeedState
    from tests.factories import InstrumentFactory

    FeedState.get_solo().watched.set([InstrumentFactory(symbol="RELIANCE", exchange="NSE")])
    monkeypatch.setattr(hours, "is_open", lambda exchange, at: False)
    result = feed_check(active_feed="external")
    assert result["ok"] and result["detail"] == "no tick yet; every market closed"


@pytest.mark.django_db
def test_check_health_command_runs_chosen_checks_and_fails_when_one_does(running_worker, feed_alive):
    import json
    from io import StringIO

    from django.core.management import CommandError, call_command

    out = StringIO()
    call_command("check_health", "--only", "worker", "--only", "database", stdout=out)
    assert set(json.loads(out.getvalue())) == {"worker", "database"}
    cache.clear()  # the cluster's heartbeat is gone
    with pytest.raises(CommandError, match="unhealthy: worker"):
        call_command("check_health", "--only", "worker", stdout=StringIO())
