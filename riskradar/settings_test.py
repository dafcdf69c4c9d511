"""Settings for the test suite: the same as production code paths, with fast hashing.

Without REDIS_URL the suite runs on in-memory channel layer and cache; CI sets REDIS_URL and
DATABASE_URL so the same tests run against real PostgreSQL and Redis.
"""

import os

from riskradar.settings import *  # noqa: F403
from riskradar.settings import Q_CLUSTER

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
    # repeat the others': its groups and cached keys get a prefix of their own, so none reaches another worker.
    CHANNEL_LAYERS = {
        "default": {
            **CHANNEL_LAYERS["default"],
            "CONFIG": {**CHANNEL_LAYERS["default"]["CONFIG"], "prefix": f"riskradar-{worker}"},
        }
    }
    CACHES = {"default": {**CACHES["default"], "KEY_PREFIX": f"riskradar-{worker}"}}

# Tasks run inline in tests unless a test starts a cluster of its own.
Q_CLUSTER = {**Q_CLUSTER, "sync": True}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
