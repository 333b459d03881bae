"""Services as process groups, with real processes: liveness (a zombie is dead), ending what a dead
service left in its group, and the supervisor that starts a service again when it exits on its own
(an Airflow scheduler exits when PostgreSQL restarts under it) but not when it is stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ecompipe.core import processes


def _wait_for(what: str, condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def test_a_service_that_died_is_not_running_and_what_it_left_is_ended() -> None:
    """A service started by this process that dies stays a zombie until reaped: it must count as
    stopped (so that `make backfill` starts it again), and the members of its process group that it
    left running (the scheduler's log server holds a port) must be ended before it starts again."""
    leader = subprocess.Popen(["sh", "-c", "sleep 60 & exit 0"], start_new_session=True)
    _wait_for("the leader to be a zombie", lambda: (processes.proc_stat(leader.pid) or ["gone"])[0] == "Z")
    left = processes.live_group_members(leader.pid)
    assert len(left) == 1 and left[0] != leader.pid, left  # the sleep, still running

    assert not processes.alive(leader.pid)
    with pytest.raises(ProcessLookupError):
        os.kill(leader.pid, 0)  # reaped, not only reported
    processes.end_groups({"test": leader.pid}, timeout=10.0)
    assert processes.live_group_members(leader.pid) == []
    assert processes.alive(os.getpid())  # a running process is still running


def test_the_supervisor_starts_a_service_again_and_a_stop_ends_it_for_good(tmp_path: Path) -> None:
    starts, helpers, once, log = (tmp_path / name for name in ("starts", "helpers", "once", "log"))
    # Each start records itself and leaves a helper running in the group (as the scheduler leaves its
    # log server); the first start exits with code 3, the second keeps running.
    script = (
        f"echo $$ >> {starts}; sleep 300 & echo $! >> {helpers}; "
        f"if [ -e {once} ]; then exec sleep 300; fi; touch {once}; exit 3"
    )
    with log.open("wb") as out:
        supervisor = subprocess.Popen(
            processes.supervised("scheduler", ["sh", "-c", script]),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_for("the second start", lambda: len(_lines(starts)) == 2)
        first_helper = int(_lines(helpers)[0])
        assert not processes.alive(first_helper), "what the exited service left was not ended first"
        assert "ecompipe supervisor: scheduler exited (code 3)" in log.read_text()
        assert "left 1 process(es) running: ending them" in log.read_text()
        assert supervisor.poll() is None

        os.killpg(supervisor.pid, signal.SIGTERM)  # how `make airflow-stop` stops a component
        assert supervisor.wait(timeout=15) == 128 + signal.SIGTERM  # the service's: ended by SIGTERM
        _wait_for("the group to end", lambda: not processes.group_alive(supervisor.pid), timeout=15)
        time.sleep(2.5)  # longer than the supervisor's delay before a start
        assert len(_lines(starts)) == 2, "a stopped service was started again"
    finally:
        if processes.group_alive(supervisor.pid):
            os.killpg(supervisor.pid, signal.SIGKILL)


def test_the_supervisor_refuses_a_command_line_without_a_command() -> None:
    command = [sys.executable, "-m", "ecompipe.core.processes", "scheduler", "--"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "usage: python -m ecompipe.core.processes NAME -- COMMAND" in done.stderr
