"""Latency of POST /api/v1/risk/calculate on a running server: `python -m bench.api [--requests N]`.

Builds a throwaway installation in a temporary directory (SQLite, migrated), with 50 equities of
600 days of simulated prices and a portfolio holding all 50, starts Daphne on a free local port with
an embedded Redis, signs in for a token and times the endpoint over one kept-alive connection for
each method. Prints p50, p90, p99 and the mean; nothing is asserted.
"""

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POSITIONS = 50
DAYS = 600


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _prepare(env: dict) -> str:
    """Migrate and create the benchmark portfolio; return the analyst's password."""
    script = f"""
import datetime as dt, numpy as np
from decimal import Decimal
from django.utils import timezone
from apps.accounts.services import user_create
from apps.market.models import Instrument, PriceBar, Quote
from apps.portfolios.models import Portfolio
from apps.portfolios.services import trade_book
rng = np.random.default_rng(7)
end = dt.date.today() - dt.timedelta(days=1)
dates = [d.date() for d in __import__("pandas").bdate_range(end=end, periods={DAYS})]
portfolio = Portfolio.objects.create(code="BENCH50", name="Benchmark 50", base_currency="INR")
for n in range({POSITIONS}):
    inst = Instrument.objects.create(symbol=f"BEQ{{n:02d}}", name=f"Bench equity {{n}}", asset_class="equity",
                                     currency="INR", exchange="NSE")
    path = 100 * np.exp(np.cumsum(rng.normal(0, 0.015, len(dates))))
    PriceBar.objects.bulk_create([PriceBar(instrument=inst, date=d, close=Decimal(f"{{p:.4f}}"))
                                  for d, p in zip(dates, path)])
    Quote.objects.create(instrument=inst, price=Decimal(f"{{path[-1]:.4f}}"), ts=timezone.now())
    trade_book(portfolio=portfolio, instrument=inst, side="BUY", quantity=Decimal(int(rng.integers(10, 1000))),
               price=Decimal(f"{{path[-1]:.4f}}"), traded_at=timezone.now() - dt.timedelta(hours=1),
               external_id=f"BENCH-{{n}}")
user_create(username="bench", password="bench-password-123", role="Analyst")
"""
    py = sys.executable
    subprocess.run([py, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    subprocess.run([py, "manage.py", "shell", "-c", script], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    return "bench-password-123"


def _wait_for(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the server did not listen on {port}")


def _request(conn: http.client.HTTPConnection, method: str, path: str, body: dict, token: str | None = None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn.request(method, path, body=json.dumps(body), headers=headers)
    response = conn.getresponse()
    data = response.read()
    return response.status, data


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        env.update(DJANGO_SETTINGS_MODULE="riskradar.settings", RISKRADAR_VAR_DIR=tmp, LOG_LEVEL="WARNING")
        print(f"preparing {POSITIONS} positions x {DAYS} days in {tmp} ...", flush=True)
        password = _prepare(env)
        sys.path.insert(0, str(ROOT))
        from riskradar.embedded_redis import redis_server_argv

        redis = subprocess.Popen(redis_server_argv(Path(tmp) / "redis.sock"), stdout=subprocess.DEVNULL)
        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "riskradar.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for(port)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            status, data = _request(conn, "POST", "/api/v1/auth/login", {"username": "bench", "password": password})
            if status != 200:
                raise RuntimeError(f"login failed: {status} {data[:200]!r}")
            token = json.loads(data)["token"]
            print(f"server on 127.0.0.1:{port}; {args.requests} requests per method after {args.warmup} warm-up")
            print(f"{'method':<16} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'mean ms':>8}  VaR 95% 1d")
            for method in ("historical", "parametric", "cornish_fisher", "monte_carlo"):
                body = {"portfolio_id": "BENCH50", "metrics": ["var", "cvar"], "confidence_level": 0.95,
                        "horizon": "1d", "method": method}  # fmt: skip
                timings = []
                for n in range(args.warmup + args.requests):
                    started = time.perf_counter()
                    status, data = _request(conn, "POST", "/api/v1/risk/calculate", body, token)
                    elapsed = (time.perf_counter() - started) * 1000
                    if status != 200:
                        raise RuntimeError(f"{method}: {status} {data[:300]!r}")
                    if n >= args.warmup:
                        timings.append(elapsed)
                var = json.loads(data)["metrics"].get("var")
                print(
                    f"{method:<16} {_percentile(timings, 0.5):8.1f} {_percentile(timings, 0.9):8.1f} "
                    f"{_percentile(timings, 0.99):8.1f} {sum(timings) / len(timings):8.1f}  {var}"
                )
            print("targets: p50 20 ms, p99 60 ms")
        finally:
            server.terminate()
            redis.terminate()
            server.wait(timeout=10)
            redis.wait(timeout=10)


if __name__ == "__main__":
    main()
