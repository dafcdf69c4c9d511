"""End to end on real processes: a tick posted to the API reaches a WebSocket client as a risk update, and a
killed worker loses no queued recalculation.

Daphne, the django-q2 cluster and Redis run as separate processes (tests/e2e/platform.py), on SQLite here
and on a PostgreSQL database of their own when DATABASE_URL is set (CI's second run). The deadlines below
are functional ("within a few seconds", generous for a loaded CI machine), not speed measurements: those
are bench.live's.
"""

import asyncio
import datetime as dt
import json
import time
import uuid
from decimal import Decimal

import pytest
import websockets

from tests.e2e.platform import Platform

pytestmark = pytest.mark.e2e

RISK_UPDATE_DEADLINE = 30.0  # seconds


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    running = Platform(tmp_path_factory.mktemp("platform"))
    try:
        yield running.start()
    finally:
        running.stop()


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def latest_price(platform: Platform, symbol: str) -> Decimal:
    status, body = platform.api("GET", f"/api/v1/quotes?symbol={symbol}")
    assert status == 200, body
    rows = body.get("results", body)
    if rows:
        return Decimal(str(rows[0]["price"]))
    status, body = platform.api("GET", f"/api/v1/prices?symbol={symbol}&ordering=-date&page_size=1")
    assert status == 200, body
    return Decimal(str(body["results"][0]["close"]))


def post_tick(platform: Platform, symbol: str, factor: str) -> None:
    price = (latest_price(platform, symbol) * Decimal(factor)).quantize(Decimal("0.01"))
    status, body = platform.api(
        "POST", "/api/v1/market/ticks", {"ticks": [{"symbol": symbol, "price": str(price), "ts": now_iso()}]}
    )
    assert status in (200, 201), body
    assert body["accepted"] == 1, body


async def subscribe(platform: Platform, portfolio: str, symbol: str):
    socket = await websockets.connect(
        platform.ws_url, additional_headers={"Authorization": f"Bearer {platform.info['token']}"}, open_timeout=10
    )
    await socket.send(json.dumps({"action": "subscribe", "portfolios": [portfolio], "symbols": [symbol]}))
    while True:
        message = json.loads(await asyncio.wait_for(socket.recv(), timeout=10))
        if message["type"] == "subscribed":
            assert message["data"] == {"portfolios": [portfolio], "symbols": [symbol]}
            return socket


async def next_event(socket, event_type: str, *, timeout: float, predicate=lambda data: True) -> tuple[dict, float]:
    """Return (event, seconds waited) for the next event of a type whose data satisfies the predicate."""
    started = time.monotonic()
    deadline = started + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no {event_type} event within {timeout:.0f} s")
        message = json.loads(await asyncio.wait_for(socket.recv(), timeout=remaining))
        if message["type"] == event_type and predicate(message["data"]):
            return message, time.monotonic() - started


def intraday_snapshots(platform: Platform, portfolio_id: int) -> int:
    return int(
        platform.shell(
            "from apps.risk.models import RiskSnapshot, SnapshotKind; "
            f"print(RiskSnapshot.objects.filter(portfolio_id={portfolio_id}, kind=SnapshotKind.INTRADAY).count())"
        ).splitlines()[-1]
    )


def queued_tasks(platform: Platform) -> int:
    return int(platform.shell("from django_q.models import OrmQ; print(OrmQ.objects.count())").splitlines()[-1])


def test_a_posted_tick_reaches_a_connected_websocket_as_a_risk_update(platform):
    info = platform.info
    before = intraday_snapshots(platform, info["portfolio_id"])

    async def scenario():
        socket = await subscribe(platform, info["portfolio"], info["symbol"])
        try:
            post_tick(platform, info["symbol"], "1.01")
            tick, _ = await next_event(
                socket, "tick", timeout=RISK_UPDATE_DEADLINE, predicate=lambda d: d["symbol"] == info["symbol"]
            )
            update, waited = await next_event(
                socket,
                "risk_update",
                timeout=RISK_UPDATE_DEADLINE,
                predicate=lambda d: d["portfolio_code"] == info["portfolio"],
            )
            return tick, update, waited
        finally:
            await socket.close()

    tick, update, waited = asyncio.run(scenario())
    print(f"risk_update arrived {waited:.2f} s after the tick event")
    data = update["data"]
    assert update["seq"] > tick["seq"]
    assert data["var"] > 0 and data["es"] >= data["var"]
    assert data["severity"] in ("NONE", "LOW", "MEDIUM", "HIGH")
    # The event describes a snapshot the worker stored.
    assert intraday_snapshots(platform, info["portfolio_id"]) > before
    # What the socket said, the HTTP gap API says too: the socket is a notifier, not the record.
    status, body = platform.api("GET", f"/api/v1/stream/events?after={tick['seq'] - 1}&limit=500")
    assert status == 200
    assert any(e["seq"] == update["seq"] and e["type"] == "risk_update" for e in body["events"])


def test_a_killed_worker_finishes_the_queued_recalculations_after_restart(platform):
    info = platform.info
    before = intraday_snapshots(platform, info["portfolio_id"])

    def queue_work_without_a_worker() -> None:
        platform.kill_worker()
        try:
            # With the worker dead, a tick and a trade queue work that nothing runs yet.
            post_tick(platform, info["symbol"], "0.99")
            status, body = platform.api(
                "POST",
                "/api/v1/trades",
                {
                    "portfolio": info["portfolio"],
                    "symbol": info["symbol"],
                    "side": "BUY",
                    "quantity": "1",
                    "price": str(latest_price(platform, info["symbol"])),
                    "traded_at": now_iso(),
                    "external_id": f"e2e-{uuid.uuid4().hex}",
                    # The demo book is over its default hard limits (firm-wide symbol exposure); this test is
                    # about the worker, so the Admin books over them.
                    "override_hard_limits": True,
                },
            )
            assert status == 201, body
            time.sleep(2)  # anything a surviving worker could have done, it would have done by now
            assert queued_tasks(platform) >= 1
            assert intraday_snapshots(platform, info["portfolio_id"]) == before
        finally:
            platform.start_worker()

    async def scenario():
        socket = await subscribe(platform, info["portfolio"], info["symbol"])
        try:
            await asyncio.to_thread(queue_work_without_a_worker)
            update, _ = await next_event(
                socket,
                "risk_update",
                timeout=RISK_UPDATE_DEADLINE * 2,
                predicate=lambda d: d["portfolio_code"] == info["portfolio"],
            )
            return update
        finally:
            await socket.close()

    update = asyncio.run(scenario())
    assert update["data"]["portfolio_id"] == info["portfolio_id"]
    platform.wait_for(lambda: queued_tasks(platform) == 0, "the queue to drain", timeout=RISK_UPDATE_DEADLINE)
    assert intraday_snapshots(platform, info["portfolio_id"]) > before
    platform.wait_for(platform.processes_healthy, "health ok with the new worker", timeout=RISK_UPDATE_DEADLINE)


def test_no_process_logged_a_traceback(platform):
    """Runs last in this module: whatever the tests above did, no process hit an unexpected error."""
    for name in ("web", "worker"):
        log = (platform.directory / f"{name}.log").read_text(errors="replace")
        assert "Traceback" not in log, f"{name}.log:\n{log[-5000:]}"
