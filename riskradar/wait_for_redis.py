"""Wait until the configured Redis answers, so web and worker start only once it is up."""

import os
import sys
import time


def main(timeout: float = 30.0) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "riskradar.settings")
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1)
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.ping()
            return 0
        except redis.RedisError as exc:
            if time.monotonic() > deadline:
                print(f"Redis at {settings.REDIS_URL} did not answer within {timeout:.0f} s: {exc}", file=sys.stderr)
                return 1
            time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main())
