"""Load on the API and the dashboard: `python -m bench.load [--seconds S] [--clients N]`.

Starts the platform's real processes on a throwaway installation (tests/e2e/platform.py: the demo desk seeded
with 120 days of prices, an embedded Redis, Daphne and the django-q2 cluster; a SQLite file in a temporary
directory, or a fresh database on the PostgreSQL server of DATABASE_URL, dropped afterwards), recalculates
every portfolio once so each has a snapshot, and runs `--clients` concurrent clients against it with locust
(as a library, FastHttpUser) for `--seconds` after `--warmup` seconds:

- API clients (the rest of --clients), signed in with one Analyst's token, each sending its next request as
  soon as the last is answered: the portfolios list, a portfolio's latest snapshot, the alerts inbox, an
  instrument's prices, and now and then a risk calculation (historical VaR and ES of a portfolio, computed
  and not stored);
- dashboard clients (`--viewers`, default 30 % of --clients), each a Viewer who signs in through the login
  page (CSRF token and session cookie, as a browser does) and then loads the dashboard page and its htmx
  partials (KPIs, risk and market feeds, VaR trend, exchange clocks, alert charts) with the HX-Request header.

It prints requests per second and p50 / p99 latency per endpoint group and overall, measured from every
response in the timed window, and the errors (any status other than 200, a sign-in that did not hold, a
client that failed): there must be none, and the command exits with status 1 if there were. The API's
per-user rate limit (API_THROTTLE_USER) is raised for the run, or every client sharing the token would be
refused with 429 long before the server is busy. The load generator runs on the same machine as the
platform: the figures are indicative of the box, not of the server alone.
"""

import argparse
import math
import random
import re
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import gevent
from locust import FastHttpUser, constant, events, task
from locust.env import Environment

from tests.e2e.platform import Platform

THROTTLE = "1000000/min"
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
PARTIALS = {
    "kpis": "/dashboard/kpis/",
    "risk feed": "/dashboard/risk-feed/",
    "market feed": "/dashboard/market-feed/",
    "trend": "/dashboard/trend/",
    "exchanges": "/dashboard/exchanges/",
    "alert charts": "/alerts/charts/",
}
GROUPS = (
    "api: portfolios",
    "api: latest snapshot",
    "api: alerts",
    "api: prices",
    "api: risk calculate",
    "page: dashboard",
    "htmx: dashboard partials",
    "page: sign-in",
)


class Desk:
    """What the clients ask about, read from the platform before the load starts."""

    token = ""
    viewer: tuple[str, str] = ("", "")
    portfolios: list[str] = []
    symbols: list[str] = []
    signed_in = 0


class Recorder:
    """Every response's time by group while `measuring`, and every error of the whole run."""

    def __init__(self) -> None:
        self.measuring = False
        self.elapsed = 0.0
        self.times: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.examples: list[str] = []

    def on_request(self, request_type, name, response_time, response_length, exception=None, **kwargs) -> None:
        if exception is not None:
            self.error(name, f"{request_type} {name}: {exception}")
        elif self.measuring:
            self.times[name].append(response_time)

    def on_user_error(self, user_instance, exception, tb, **kwargs) -> None:
        self.error("client", f"{type(user_instance).__name__}: {exception!r}")

    def error(self, name: str, message: str) -> None:
        self.errors[name] += 1
        if len(self.examples) < 10:
            self.examples.append(message[:300])


class ApiClient(FastHttpUser):
    """An API client reading the desk back to back, with a risk calculation now and then."""

    wait_time = constant(0)

    def on_start(self) -> None:
        self.auth = {"Authorization": f"Bearer {Desk.token}"}

    def get(self, path: str, name: str) -> None:
        self.client.get(path, headers=self.auth, name=name)

    @task(4)
    def portfolios(self) -> None:
        self.get("/api/v1/portfolios?limit=50", "api: portfolios")

    @task(4)
    def latest_snapshot(self) -> None:
        self.get(f"/api/v1/risk/history?portfolio={random.choice(Desk.portfolios)}&limit=1", "api: latest snapshot")

    @task(3)
    def alerts(self) -> None:
        self.get("/api/v1/alerts?limit=50", "api: alerts")

    @task(3)
    def prices(self) -> None:
        self.get(f"/api/v1/prices?symbol={random.choice(Desk.symbols)}&ordering=-date&limit=60", "api: prices")

    @task(1)
    def calculate(self) -> None:
        body = {
            "portfolio_id": random.choice(Desk.portfolios),
            "metrics": ["var", "cvar"],
            "confidence_level": 0.99,
            "horizon": "1d",
            "method": "historical",
        }
        self.client.post("/api/v1/risk/calculate", json=body, headers=self.auth, name="api: risk calculate")


class DeskViewer(FastHttpUser):
    """A Viewer on the dashboard: signs in through the login page, then loads the page and its partials."""

    wait_time = constant(0)

    def on_start(self) -> None:
        page = self.client.get("/accounts/login/", name="page: sign-in")
        found = CSRF_INPUT.search(page.text or "")
        if found is None:
            raise RuntimeError("the login page has no CSRF token")
        username, password = Desk.viewer
        form = {"csrfmiddlewaretoken": found.group(1), "username": username, "password": password, "next": "/"}
        with self.client.post(
            "/accounts/login/", data=form, name="page: sign-in", allow_redirects=False, catch_response=True
        ) as answer:
            if answer.status_code != 302 or "login" in (answer.headers.get("Location") or ""):
                answer.failure(f"sign-in refused: {answer.status_code}")
                raise RuntimeError("sign-in refused")
        Desk.signed_in += 1

    def page(self, path: str, name: str, headers: dict | None = None) -> None:
        # Redirects are not followed: a session that lapsed would be sent to the login page, an error here.
        with self.client.get(path, name=name, headers=headers, allow_redirects=False, catch_response=True) as answer:
            if answer.status_code != 200:
                answer.failure(f"{path}: {answer.status_code} {answer.headers.get('Location') or ''}")

    @task(1)
    def dashboard(self) -> None:
        self.page("/", "page: dashboard")

    @task(6)
    def partial(self) -> None:
        path = random.choice(list(PARTIALS.values()))
        self.page(path, "htmx: dashboard partials", headers={"HX-Request": "true", "HX-Current-URL": "/"})


# ------------------------------------------------------------------------------ the platform


# The bench's own Viewer and Analyst, with passwords it knows (the demo users' are printed once, at seeding).
USERS_SCRIPT = """
from apps.accounts.services import user_create
user_create(username="load-viewer", password=PASSWORD, role="Viewer")
user_create(username="load-analyst", password=PASSWORD, role="Analyst")
"""


def desk_read(platform: Platform) -> None:
    """Create the bench's users, sign the Analyst in for a token, and read the portfolio codes and symbols."""
    password = secrets.token_urlsafe(16)
    platform.shell(f"PASSWORD = {password!r}\n{USERS_SCRIPT}")
    Desk.viewer = ("load-viewer", password)
    platform.info.pop("token", None)
    status, body = platform.api("POST", "/api/v1/auth/login", {"username": "load-analyst", "password": password})
    if status != 200:
        raise RuntimeError(f"the Analyst could not sign in: {status} {body}")
    Desk.token = platform.info["token"] = body["token"]
    _, portfolios = platform.api("GET", "/api/v1/portfolios?limit=200")
    _, instruments = platform.api("GET", "/api/v1/instruments?limit=200")
    Desk.portfolios = [p["code"] for p in portfolios["results"]]
    Desk.symbols = [i["symbol"] for i in instruments["results"]]
    if not Desk.portfolios or not Desk.symbols:
        raise RuntimeError("the demo desk has no portfolios or instruments")


# ------------------------------------------------------------------------------ the run


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def load(platform: Platform, *, clients: int, viewers: int, seconds: float, warmup: float) -> Recorder:
    ApiClient.fixed_count, DeskViewer.fixed_count = clients - viewers, viewers
    env = Environment(user_classes=[ApiClient, DeskViewer], host=platform.base_url, events=events)
    recorder = Recorder()
    env.events.request.add_listener(recorder.on_request)
    env.events.user_error.add_listener(recorder.on_user_error)
    runner = env.create_local_runner()
    try:
        runner.start(clients, spawn_rate=clients)
        deadline = time.monotonic() + 60
        while (runner.user_count < clients or Desk.signed_in < viewers) and not recorder.errors:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{runner.user_count} clients started and {Desk.signed_in} viewers signed in")
            gevent.sleep(0.1)
        gevent.sleep(warmup)
        recorder.measuring = True
        started = time.perf_counter()
        gevent.sleep(seconds)
        recorder.measuring = False
        recorder.elapsed = time.perf_counter() - started
    finally:
        runner.quit()
    return recorder


def report(recorder: Recorder, *, database: str, clients: int, viewers: int) -> None:
    elapsed = recorder.elapsed
    print(
        f"\n{clients} clients ({clients - viewers} API, {viewers} dashboard Viewers) for {elapsed:.1f} s on {database}"
    )
    print(f"{'endpoint group':<28} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    every: list[float] = []
    for group in GROUPS:
        times = recorder.times.get(group, [])
        every += times
        if not times and not recorder.errors.get(group):
            continue
        print(
            f"{group:<28} {len(times):>9,} {len(times) / elapsed:>8.1f} {percentile(times, 0.5):>8.1f} "
            f"{percentile(times, 0.99):>8.1f} {recorder.errors.get(group, 0):>7}"
        )
    errors = sum(recorder.errors.values())
    print(
        f"{'overall':<28} {len(every):>9,} {len(every) / elapsed:>8.1f} {percentile(every, 0.5):>8.1f} "
        f"{percentile(every, 0.99):>8.1f} {errors:>7}"
    )
    print(f"errors over the whole run (sign-in and warm-up included): {errors}")
    for example in recorder.examples:
        print(f"  {example}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the timed load lasts")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients, API and dashboard together")
    parser.add_argument("--viewers", type=int, help="of the clients, dashboard Viewers (default 30 %%)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of load before the timing starts")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs) after the run")
    args = parser.parse_args()
    viewers = args.viewers if args.viewers is not None else max(1, round(args.clients * 0.3))
    if args.clients < 1 or not 0 <= viewers <= args.clients:
        parser.error("--clients must be at least 1 and --viewers between 0 and --clients")

    # SIGTERM ends the run like Ctrl-C: the finally block stops every process and removes every file.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    tmp = Path(tempfile.mkdtemp(prefix="riskradar-load-"))
    platform = None
    errors = 0
    try:
        platform = Platform(tmp, worker_timeout=300, worker_retry=360)
        platform.env["API_THROTTLE_USER"] = THROTTLE
        database = "PostgreSQL" if platform.postgres_admin_url else "SQLite"
        print(f"preparing the demo desk in {tmp} ({database}, embedded Redis) ...", flush=True)
        started = time.perf_counter()
        platform.start()
        platform.manage("recalc_risk", "--all")
        desk_read(platform)
        print(
            f"platform up on {platform.base_url} in {time.perf_counter() - started:.0f} s: "
            f"{len(Desk.portfolios)} portfolios, {len(Desk.symbols)} instruments; API_THROTTLE_USER={THROTTLE}; "
            f"{args.warmup:.0f} s of warm-up, then {args.seconds:.0f} s timed",
            flush=True,
        )
        recorder = load(platform, clients=args.clients, viewers=viewers, seconds=args.seconds, warmup=args.warmup)
        report(recorder, database=database, clients=args.clients, viewers=viewers)
        errors = sum(recorder.errors.values())
    except Exception:
        if platform is not None:
            print(platform.logs(), file=sys.stderr)
        raise
    finally:
        if platform is not None:
            platform.stop()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
