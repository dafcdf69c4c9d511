"""Settings for the test suite: the same as production code paths, with fast hashing.

Without REDIS_URL the suite runs on in-memory channel layer and cache; CI sets REDIS_URL and
DATABASE_URL so the same tests run against real PostgreSQL and Redis.
"""

import os
from urllib.parse import parse_qsl, urlencode

from redis.connection import parse_url

from riskradar.settings import *  # noqa: F403
from riskradar.settings import Q_CLUSTER, REDIS_URL


def _worker_database(url: str, worker: str) -> str:
    """`url` on the database past the channel layer's one for each pytest-xdist worker (gw0 the next, gw1 the one
    after), named by the `db` query argument, which takes precedence over a path for redis:// and is the only way
    for unix://."""
    database = (parse_url(url).get("db", 0) + 1 + int(worker.removeprefix("gw"))) % 16
    address, _, query = url.partition("?")
    arguments = [(name, value) for name, value in parse_qsl(query) if name != "db"] + [("db", database)]
    return f"{address}?{urlencode(arguments)}"


PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# The suite makes thousands of requests from one address in a minute; throttling has tests of its own
# (tests/accounts/test_throttling.py), which set their own rates.
REST_FRAMEWORK = {
    **REST_FRAMEWORK,  # noqa: F405
    "DEFAULT_THROTTLE_RATES": {"anon": "100000/min", "user": "100000/min", "login": "100000/min"},
}

if not os.environ.get("REDIS_URL"):
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
elif worker := os.environ.get("PYTEST_XDIST_WORKER"):
    # Workers of one run share the Redis server, and each has a database of its own whose ids (users, portfolios)
    # repeat the others': its groups get a prefix of their own, so none reaches another worker.
    CHANNEL_LAYERS = {
        "default": {
            **CHANNEL_LAYERS["default"],
            "CONFIG": {**CHANNEL_LAYERS["default"]["CONFIG"], "prefix": f"riskradar-{worker}"},
        }
    }
    # A test's cache.clear() is Redis's FLUSHDB, which ignores prefixes: each worker's cache has a Redis database
    # of its own too, none of them the channel layer's.
    CACHES = {"default": {**CACHES["default"], "LOCATION": _worker_database(REDIS_URL, worker)}}

# Tasks run inline in tests unless a test starts a cluster of its own.
Q_CLUSTER = {**Q_CLUSTER, "sync": True}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
