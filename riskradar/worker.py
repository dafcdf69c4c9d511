"""Run the task worker (`manage.py qcluster`) so that it stops cleanly however it is asked to stop.

A process manager (honcho under `make run`, supervisord with stopasgroup, a terminal's Ctrl-C) signals a service's
whole process group. qcluster's sentinel and workers die at once on that SIGTERM, before the cluster can stop them in
order: a running task is cut off, and the cluster itself hangs in its shutdown until it is killed.

This wrapper gives the cluster a process group of its own and passes SIGTERM or SIGINT to the cluster's leader alone,
which stops taking tasks, lets the running ones finish and stops its processes in order. If the cluster has not
stopped WORKER_STOP_GRACE seconds (default 60) later, its whole group is killed. Should the wrapper itself be killed,
the kernel sends the cluster SIGTERM (Linux's parent-death signal), so no cluster outlives it.

    python -m riskradar.worker [qcluster options]
"""

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

MANAGE = Path(__file__).resolve().parent.parent / "manage.py"
PR_SET_PDEATHSIG = 1


def _stop_with_parent() -> None:
    """In the child, before qcluster starts: ask for SIGTERM when the wrapper dies (Linux only; elsewhere a no-op)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def main(argv: list[str]) -> int:
    grace = float(os.environ.get("WORKER_STOP_GRACE", "60"))
    cluster = subprocess.Popen(
        [sys.executable, str(MANAGE), "qcluster", *argv], start_new_session=True, preexec_fn=_stop_with_parent
    )
    asked_at: list[float] = []

    def stop(signum, frame) -> None:
        if not asked_at:
            asked_at.append(time.monotonic())
            with contextlib.suppress(ProcessLookupError):
                cluster.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        while True:
            try:
                return cluster.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                if asked_at and time.monotonic() - asked_at[0] > grace:
                    print(f"worker: the cluster did not stop within {grace:.0f} s; killing it", file=sys.stderr)
                    os.killpg(cluster.pid, signal.SIGKILL)
                    return cluster.wait()
    finally:
        # Whatever ended the cluster's leader, leave none of its processes behind.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(cluster.pid, signal.SIGKILL)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
