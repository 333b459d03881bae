"""Long-running services as process groups: liveness from /proc, ending a group, and keeping one running.

Every service this project starts (Airflow's components, Redis, the Celery workers) runs in a process
group of its own whose leader's pid is recorded, so that stopping it ends everything it spawned. The
leader is ``python -m ecompipe.core.processes NAME -- COMMAND...``: it runs the service and starts it
again when it exits on its own. An Airflow scheduler exits when its metadata database goes away (a
PostgreSQL restart: "the database system is shutting down"), as production schedulers do under systemd
or Kubernetes, which restart them; here nothing else would, and the runs would wait, queued, forever.
A stop (SIGTERM to the group) reaches the leader and the service together: the leader then waits for
the service and exits without starting it again.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

# A service that ran this long before it exited is started again at once; one that keeps exiting
# sooner waits longer each time (up to MAX_DELAY), so that a database still restarting is not hammered.
STABLE_SECONDS = 60.0
FIRST_DELAY = 1.0
MAX_DELAY = 30.0
LEFTOVER_TIMEOUT = 10.0


def _exists(signal_zero: Callable[[int], None], ident: int) -> bool:
    """Does the process (``os.kill``) or group (``os.killpg``) exist? Signal 0 asks without sending."""
    try:
        signal_zero(ident)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def proc_stat(pid: int | str) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state first, then ppid, pgrp, ...),
    or None if there is no such process (or no /proc)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def alive(pid: int) -> bool:
    """Is the process running? A zombie (it exited; its parent has not reaped it) is not, and is
    reaped here when this process started it (a service that died under `make backfill`)."""
    if not _exists(lambda pid: os.kill(pid, 0), pid):
        return False
    fields = proc_stat(pid)
    if fields is None or fields[0] != "Z":
        return True  # running (without /proc, the signal's answer is all there is)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    return False


def live_group_members(pgid: int) -> list[int]:
    """Processes of a process group that are still running (zombies, already dead, are not counted)."""
    members = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and (fields := proc_stat(proc.name)) and int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(proc.name))
    return members


def group_alive(pgid: int) -> bool:
    # A zombie leader still "exists" for killpg: look for a live member of the group too.
    return _exists(lambda pgid: os.killpg(pgid, 0), pgid) and bool(live_group_members(pgid))


def _end(
    targets: dict[str, int], send: Callable[[int, int], None], running: Callable[[int], bool], timeout: float
) -> None:
    """SIGTERM each target (name -> pid or group id) with ``send``; SIGKILL what runs after ``timeout``."""
    targets = {name: ident for name, ident in targets.items() if ident and running(ident)}
    for ident in targets.values():
        with contextlib.suppress(ProcessLookupError):
            send(ident, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(running(ident) for ident in targets.values()):
        time.sleep(0.1)
    for name, ident in targets.items():
        if running(ident):
            print(f"  {name} did not stop in {timeout:.0f}s: killing it (SIGKILL)", flush=True)
            with contextlib.suppress(ProcessLookupError):
                send(ident, signal.SIGKILL)


def end_groups(groups: dict[str, int], timeout: float) -> None:
    """End the process groups of services (name -> group id): SIGTERM, then SIGKILL after ``timeout``."""
    _end(groups, os.killpg, group_alive, timeout)


def _line(name: str, message: str) -> str:
    return f"ecompipe supervisor: {name} {message}"


def exit_line(name: str) -> str:
    """How a supervisor's log line about its service's exit begins (after the time stamp): what
    tells a service that keeps exiting from one that is slow to start."""
    return _line(name, "exited")


def supervised(name: str, command: list[str]) -> list[str]:
    """The command line that runs ``command`` as service ``name``, started again when it exits."""
    return [sys.executable, "-m", "ecompipe.core.processes", name, "--", *command]


class _Supervisor:
    def __init__(self, name: str, command: list[str]) -> None:
        self.name, self.command = name, command
        self.stopping = False
        self.child: subprocess.Popen[bytes] | None = None

    def say(self, message: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        print(f"[{stamp}] {_line(self.name, message)}", flush=True)

    def on_stop(self, signum: int, _frame: object) -> None:
        self.stopping = True
        if self.child is not None and self.child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.child.send_signal(signum)

    def pause(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(0.1)

    def end_leftovers(self) -> None:
        # What the service left in the group (the scheduler's log server holds a port, its
        # LocalExecutor workers hold task slots) must go before it starts again.
        leftovers = [pid for pid in live_group_members(os.getpgrp()) if pid != os.getpid()]
        if leftovers:
            self.say(f"left {len(leftovers)} process(es) running: ending them")
            _end({f"process {pid}": pid for pid in leftovers}, os.kill, alive, LEFTOVER_TIMEOUT)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.on_stop)
        signal.signal(signal.SIGINT, self.on_stop)
        delay = FIRST_DELAY
        code = 0
        while not self.stopping:
            started = time.monotonic()
            self.child = subprocess.Popen(self.command)
            if self.stopping:  # the stop came while it was being started: it did not get the signal
                self.child.terminate()
            code = self.child.wait()
            if self.stopping:
                break
            ran = time.monotonic() - started
            delay = FIRST_DELAY if ran >= STABLE_SECONDS else min(delay * 2, MAX_DELAY)
            self.say(f"exited (code {code}) after {ran:.0f} s: starting it again in {delay:.0f} s")
            self.end_leftovers()
            self.pause(delay)
        return code


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m ecompipe.core.processes NAME -- COMMAND [ARG...]", file=sys.stderr)
        return 2
    code = _Supervisor(argv[0], argv[2:]).run()
    return 128 - code if code < 0 else code  # ended by a signal: the shell's convention, 128 + its number


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
