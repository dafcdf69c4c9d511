"""The whole platform on real processes for end-to-end tests: embedded Redis, Daphne and the django-q2 cluster.

Each Platform has a database of its own (a SQLite file in a temporary directory, or a fresh PostgreSQL
database on the server of DATABASE_URL, dropped afterwards), its own Redis on a unix socket (the embedded
redis-server the run command starts), and its own var/ directory, so it never meets the test suite's
database or channel layer, nor another Platform. Logs of every process are kept in the directory and
printed when a wait times out.
"""

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]

# Ticks and trades queue recalculations; this script makes the data they act on: the demo desk (a short
# history keeps set-up quick) and an API token for the Admin, which may push ticks.
SETUP_SCRIPT = """
import json
from rest_framework.authtoken.models import Token
from apps.accounts.models import User
from apps.portfolios.models import Position
admin = User.objects.get(username="admin")
token, _ = Token.objects.get_or_create(user=admin)
position = (
    Position.objects.filter(instrument__asset_class="equity", portfolio__is_active=True)
    .exclude(quantity=0)
    .select_related("portfolio", "instrument")
    .order_by("portfolio__code", "instrument__symbol")
    .first()
)
print(json.dumps({
    "token": token.key,
    "portfolio": position.portfolio.code,
    "portfolio_id": position.portfolio.pk,
    "symbol": position.instrument.symbol,
}))
"""

# Browsers sign in through the pages as each role: the demo users get known passwords, and the Admin (who must use
# two-factor sign-in) an authenticator app whose key the test holds, so it can compute the codes.
ACCOUNTS_SCRIPT = """
import json
from django_otp.plugins.otp_totp.models import TOTPDevice
from apps.accounts.models import Role, User
accounts = {}
for username, password in json.loads(PASSWORDS).items():
    user = User.objects.get(username=username)
    user.set_password(password)
    user.save(update_fields=["password"])
    accounts[username] = {"role": user.role, "password": password}
    if user.role == Role.ADMIN:
        TOTPDevice.objects.filter(user=user).delete()
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)
        accounts[username]["totp_key"] = device.key
print(json.dumps(accounts))
"""
DEMO_USERNAMES = ("admin", "analyst", "viewer")


PROCESS_CHECKS = ("database", "channel_layer", "worker")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Platform:
    def __init__(self, directory: Path, *, worker_timeout: int = 20, worker_retry: int = 30):
        self.directory = directory
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws/risk-stream"
        self.processes: dict[str, subprocess.Popen] = {}
        self.postgres_admin_url: str | None = None
        self.database_url = self._database_url()
        self.env = {
            "PATH": os.environ["PATH"],
            "HOME": str(directory),
            "DJANGO_SETTINGS_MODULE": "riskradar.settings",
            "RISKRADAR_VAR_DIR": str(directory / "var"),
            "DATABASE_URL": self.database_url,
            "Q_WORKERS": "2",
            # A task a killed worker had taken is handed out again after Q_RETRY seconds.
            "Q_TIMEOUT": str(worker_timeout),
            "Q_RETRY": str(worker_retry),
            "PYTHONUNBUFFERED": "1",
        }
        self.info: dict = {}
        self.accounts: dict[str, dict] = {}

    # ---------------------------------------------------------------------------------------- database
    def _database_url(self) -> str:
        url = os.environ.get("DATABASE_URL", "")
        if not url.startswith(("postgres://", "postgresql://")):
            return f"sqlite:///{self.directory / 'db.sqlite3'}"
        import psycopg

        parts = urlsplit(url)
        name = f"riskradar_e2e_{uuid.uuid4().hex[:12]}"
        self.postgres_admin_url = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
        with psycopg.connect(self.postgres_admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self._postgres_name = name
        return urlunsplit(parts._replace(path=f"/{name}"))

    def _drop_database(self) -> None:
        if self.postgres_admin_url is None:
            return
        import psycopg

        with psycopg.connect(self.postgres_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self._postgres_name}" WITH (FORCE)')

    # ---------------------------------------------------------------------------------------- processes
    def manage(self, *args: str, timeout: float = 300) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise AssertionError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.directory / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        self.processes[name] = subprocess.Popen(
            argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()

    def start(self, *, accounts: bool = False) -> "Platform":
        """Start the platform; with `accounts`, also fill self.accounts for signing in through the pages.

        self.accounts is {username: {"role", "password"}} for the demo's admin, analyst and viewer, the Admin's
        entry with "totp_key" too: the hex key of its authenticator app, from which the test computes codes.
        """
        (self.directory / "var").mkdir(exist_ok=True)
        self.manage("migrate", "--no-input", "-v", "0")
        self.manage("seed_demo", "--days", "120", "--quiet")
        script = SETUP_SCRIPT
        if accounts:
            passwords = {username: secrets.token_urlsafe(16) for username in DEMO_USERNAMES}
            script += f"PASSWORDS = {json.dumps(json.dumps(passwords))}\n{ACCOUNTS_SCRIPT}"
        lines = self.manage("shell", "-c", script).strip().splitlines()
        if accounts:
            self.accounts = json.loads(lines.pop())
        self.info = json.loads(lines[-1])
        self._spawn("redis", [sys.executable, "-m", "riskradar.embedded_redis"])
        self.wait_for(lambda: (self.directory / "var" / "redis.sock").exists(), "embedded Redis", timeout=20)
        self._spawn(
            "web",
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "riskradar.asgi:application"],
        )
        self.start_worker()
        self.wait_for(self.processes_healthy, "health: database, channel layer and worker ok", timeout=60)
        return self

    def start_worker(self) -> None:
        self._spawn("worker", [sys.executable, "manage.py", "qcluster"])

    def kill_worker(self) -> None:
        """Kill the worker's whole process group at once (cluster, sentinel and workers), as a crash would."""
        process = self.processes.pop("worker")
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop(self) -> None:
        for name in ("worker", "web", "redis"):
            process = self.processes.pop(name, None)
            if process is None:
                continue
            try:
                # The cluster's leader alone, as riskradar.worker does: signalled as a group, qcluster hangs.
                if name == "worker":
                    process.send_signal(signal.SIGTERM)
                else:
                    os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # whatever of the group is left
            process.wait(timeout=10)
        self._drop_database()

    # ---------------------------------------------------------------------------------------- helpers
    def logs(self) -> str:
        out = []
        for path in sorted(self.directory.glob("*.log")):
            text = path.read_text(errors="replace")
            out.append(f"--- {path.name} (last 3,000 characters)\n{text[-3000:]}")
        return "\n".join(out)

    def wait_for(self, condition, what: str, *, timeout: float, interval: float = 0.2):
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{self.logs()}")
            time.sleep(interval)

    def processes_healthy(self) -> bool:
        try:
            status, body = self.api("GET", "/api/v1/health")
        except (OSError, ValueError):
            return False
        # No feed process runs here (the tests push their own ticks), so the feed check is left out.
        checks = body.get("checks", {})
        return status in (200, 503) and all(checks.get(name, {}).get("ok") for name in PROCESS_CHECKS)

    def api(self, method: str, path: str, body=None) -> tuple[int, dict]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self.info.get("token"):
            request.add_header("Authorization", f"Bearer {self.info['token']}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def shell(self, code: str) -> str:
        return self.manage("shell", "-c", code).strip()
