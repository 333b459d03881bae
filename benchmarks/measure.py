"""Run a command as a user would (a subprocess) and measure it: wall time, CPU time, peak memory.

* wall: from spawn to exit (``os.wait4`` on the child, no polling granularity);
* cpu: user + system seconds of the child and every descendant it waited for (``wait4``'s rusage);
* peak_tree_rss_mb: highest sum of RSS over the child's process tree, sampled every 50 ms with psutil
  (shared pages of forked processes are counted once per process, so it errs high);
* max_rss_mb: the largest single process of the tree (``ru_maxrss``), exact.

On a shared machine CPU time is the steadier number: other work delays wall time, not CPU time.
"""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

POLL_SECONDS = 0.05


@dataclass
class Sample:
    """One measured run."""

    wall_s: float
    cpu_s: float
    peak_tree_rss_mb: float
    max_rss_mb: float
    returncode: int
    log: str = ""
    extra: dict[str, object] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class CommandFailed(RuntimeError):
    """A measured command exited non-zero."""


def _tree_rss(roots: Iterable[int]) -> int:
    total = 0
    seen: set[int] = set()
    for root in roots:
        try:
            proc = psutil.Process(root)
            members = [proc, *proc.children(recursive=True)]
        except psutil.Error:
            continue
        for member in members:
            if member.pid in seen:
                continue
            seen.add(member.pid)
            with contextlib.suppress(psutil.Error):
                total += member.memory_info().rss
    return total


class RssSampler:
    """Samples the RSS of process trees in a thread until stopped; ``peak`` in bytes."""

    def __init__(self, roots: Callable[[], Iterable[int]], interval: float = POLL_SECONDS) -> None:
        self._roots = roots
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.peak = 0

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _tree_rss(self._roots()))
            self._stop.wait(self._interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _kill_group_after(pgid: int, timeout: float, done: threading.Event) -> threading.Thread:
    def watchdog() -> None:
        if not done.wait(timeout):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)

    thread = threading.Thread(target=watchdog, daemon=True)
    thread.start()
    return thread


def run(
    command: Sequence[str],
    *,
    log_path: Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 3600,
    check: bool = True,
    extra_roots: Callable[[], Iterable[int]] | None = None,
    poll_seconds: float = POLL_SECONDS,
) -> Sample:
    """Run ``command`` with output to ``log_path``; its own process group, killed after ``timeout``.

    ``extra_roots``: more process trees to count in the memory peak (daemons the command talks to).
    ``poll_seconds``: how often the memory peak is sampled (runs of minutes need it less often).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    done = threading.Event()
    with log_path.open("wb") as log_file:
        started = time.perf_counter()
        proc = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        _kill_group_after(proc.pid, timeout, done)
        with RssSampler(lambda: [proc.pid, *(extra_roots() if extra_roots else ())], interval=poll_seconds) as sampler:
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - started
        done.set()
    proc.returncode = os.waitstatus_to_exitcode(status)
    sample = Sample(
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        peak_tree_rss_mb=sampler.peak / 2**20,
        max_rss_mb=usage.ru_maxrss / 1024,
        returncode=proc.returncode,
        log=str(log_path),
    )
    if check and proc.returncode != 0:
        tail = log_path.read_text(errors="replace")[-3000:]
        raise CommandFailed(f"`{' '.join(map(str, command))}` exited {proc.returncode}; log {log_path}:\n{tail}")
    return sample


def median(values: Iterable[float]) -> float:
    items = list(values)
    return statistics.median(items) if items else float("nan")


def summarize(samples: Sequence[Sample]) -> dict[str, object]:
    """Medians (and the spread of wall time) of repeated runs."""
    walls = [s.wall_s for s in samples]
    return {
        "runs": len(samples),
        "wall_s": median(walls),
        "wall_min_s": min(walls) if walls else float("nan"),
        "wall_max_s": max(walls) if walls else float("nan"),
        "cpu_s": median(s.cpu_s for s in samples),
        "peak_tree_rss_mb": max((s.peak_tree_rss_mb for s in samples), default=float("nan")),
        "max_rss_mb": max((s.max_rss_mb for s in samples), default=float("nan")),
        "samples": [s.as_dict() for s in samples],
    }


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()
