"""Project-wide guarantees: migrations are complete, settings come from the environment."""

import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.django_db
def test_models_have_no_missing_migrations():
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


def run_settings(env: dict, code: str) -> str:
    script = f"import django, os; os.environ['DJANGO_SETTINGS_MODULE']='riskradar.settings'; django.setup(); {code}"
    clean_env = {k: v for k, v in env.items() if v is not None}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=clean_env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def base_env(tmp_path) -> dict:
    import os

    return {"PATH": os.environ["PATH"], "RISKRADAR_VAR_DIR": str(tmp_path), "HOME": str(tmp_path)}


def test_defaults_are_sqlite_under_var_and_embedded_redis(tmp_path):
    out = run_settings(
        base_env(tmp_path),
        "from django.conf import settings as s; print(s.DATABASES['default']['ENGINE'], s.DATABASES['default']['NAME'],"
        " s.REDIS_URL, s.DEBUG)",
    )
    engine, name, redis_url, debug = out.split()
    assert engine == "django.db.backends.sqlite3"
    assert name == str(tmp_path / "riskradar.sqlite3")
    assert redis_url == f"unix://{tmp_path / 'redis.sock'}"
    assert debug == "False"


def test_secret_key_is_generated_once_and_kept(tmp_path):
    code = "from django.conf import settings as s; print(s.SECRET_KEY)"
    first = run_settings(base_env(tmp_path), code)
    second = run_settings(base_env(tmp_path), code)
    assert first == second and len(first) >= 50
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_database_and_redis_urls_switch_to_real_services(tmp_path):
    env = {
        **base_env(tmp_path),
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/riskradar",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
    }
    out = run_settings(
        env,
        "from django.conf import settings as s; print(s.DATABASES['default']['ENGINE'],"
        " s.CHANNEL_LAYERS['default']['CONFIG']['hosts'][0]['address'], s.DATABASES['default']['OPTIONS']['pool'])",
    )
    assert out.split() == ["django.db.backends.postgresql", "redis://127.0.0.1:6379/0", "True"]


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    env = {**base_env(tmp_path), "RISKRADAR_PRODUCTION": "true"}
    script = "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='riskradar.settings'; django.setup()"
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_engine_is_importable_without_django():
    """The numeric code the desk shares never drags Django in."""
    result = subprocess.run(
        [sys.executable, "-c", "import sys, apps.portfolios.positions; print('django' in sys.modules)"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.stdout.strip() == "False", result.stderr


def test_the_forking_worker_connects_to_postgresql_without_a_pool(tmp_path):
    """A psycopg pool must not cross the worker's forks; the web process keeps it."""
    env = {**base_env(tmp_path), "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/riskradar"}
    script = (
        "import sys; sys.argv = ['manage.py', 'qcluster']; import django, os; "
        "os.environ['DJANGO_SETTINGS_MODULE'] = 'riskradar.settings'; django.setup(); "
        "from django.conf import settings as s; print(s.DATABASES['default']['OPTIONS']['pool'])"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_production_logs_one_json_object_per_line(tmp_path):
    import json
    import secrets

    env = {**base_env(tmp_path), "RISKRADAR_PRODUCTION": "true", "SECRET_KEY": secrets.token_urlsafe(60)}
    script = (
        "import django, logging, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'riskradar.settings'; django.setup(); "
        "logging.getLogger('apps.risk.live').warning('slow %s', 'ALPHA', extra={'portfolio': 'ALPHA'})"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stderr.strip().splitlines()[-1])
    assert {k: record[k] for k in ("level", "logger", "message", "portfolio")} == {
        "level": "WARNING",
        "logger": "apps.risk.live",
        "message": "slow ALPHA",
        "portfolio": "ALPHA",
    }
    assert record["time"].endswith("+00:00")
    plain = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env={**env, "LOG_FORMAT": "plain"}, capture_output=True, text=True
    )
    assert " WARNING apps.risk.live slow ALPHA" in plain.stderr


@pytest.mark.parametrize(
    ("url", "worker", "expected"),
    [
        ("redis://127.0.0.1:6379/0", "gw0", "redis://127.0.0.1:6379/0?db=1"),
        ("redis://127.0.0.1:6379/9", "gw1", "redis://127.0.0.1:6379/9?db=11"),
        ("redis://127.0.0.1:6379", "gw0", "redis://127.0.0.1:6379?db=1"),
        ("redis://127.0.0.1:6379/15", "gw0", "redis://127.0.0.1:6379/15?db=0"),
        ("unix:///tmp/redis.sock?db=3&socket_timeout=2", "gw1", "unix:///tmp/redis.sock?socket_timeout=2&db=5"),
    ],
)
def test_each_test_worker_caches_in_a_redis_database_of_its_own(url, worker, expected):
    """cache.clear() flushes a whole Redis database: a worker's must be neither the channel layer's nor another's."""
    from redis.connection import parse_url

    from riskradar.settings_test import _worker_database

    assert _worker_database(url, worker) == expected
    assert parse_url(expected).get("db") != parse_url(url).get("db", 0)
