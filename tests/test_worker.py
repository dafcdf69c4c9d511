"""riskradar.worker: the task cluster stops in order however it is asked to, and never outlives its wrapper."""

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_project import ROOT, base_env

# Generous: a cluster that stops in order takes a few seconds; one that hangs never does.
WAIT = 90


def wait_for_log(log: Path, text: str) -> str:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        content = log.read_text(errors="replace") if log.exists() else ""
        if text in content:
            return content
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not in the worker's log after {WAIT} s:\n{log.read_text(errors='replace')[-3000:]}")


def pid_alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def worker(tmp_path):
    """Start `python -m riskradar.worker` as a process manager does: the leader of a new process group."""
    env = {**base_env(tmp_path), "DJANGO_SETTINGS_MODULE": "riskradar.settings"}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "django_q", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=WAIT
    )
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "riskradar.worker"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        content = wait_for_log(log, "running.")
        pids = [int(pid) for pid in re.findall(r"ready for work at (\d+)", content)]
        assert pids, content
        yield process, log, pids
    finally:
        for group in (process.pid, *pids):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(os.getpgid(group), signal.SIGKILL)
        process.wait(timeout=WAIT)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process groups and /proc")
def test_sigterm_to_the_whole_group_stops_the_cluster_in_order(worker):
    process, log, pids = worker
    # As honcho, supervisord's stopasgroup or a terminal's Ctrl-C do it: the whole group at once.
    os.killpg(process.pid, signal.SIGTERM)
    assert process.wait(timeout=WAIT) == 0
    content = log.read_text()
    assert "stopped doing work" in content  # the workers were stopped by the cluster, not killed
    assert "has stopped." in content
    assert "did not stop" not in content
    assert not [pid for pid in pids if pid_alive(pid)]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_a_killed_wrapper_takes_the_cluster_with_it(worker):
    process, log, pids = worker
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=WAIT)
    wait_for_log(log, "has stopped.")
    deadline = time.monotonic() + WAIT
    while [pid for pid in pids if pid_alive(pid)] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in pids if pid_alive(pid)]
