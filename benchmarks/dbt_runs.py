"""`dbt build` as a user runs it (the CLI, a subprocess), measured and broken down into phases.

Phases come from dbt's own JSON log (``--log-format-file json``) and ``run_results.json``:

* ``startup``: process spawn to dbt's first log line (Python imports, CLI set-up);
* ``parse``: to "Found N models" (adapter registration, project parse: a full parse whenever --vars
  change, which is every new date);
* ``execute``: to the end of the run (hooks, models, tests), split into models / tests / hooks / dbt's
  own per-node overhead;
* ``exit``: to process exit (artifacts written, connections closed, interpreter shutdown).

Every run gets its own target and log folders, as a new date's run does (its vars differ from the
previous run's, so the saved partial-parse state is discarded anyway).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from benchmarks import measure
from benchmarks.common import DBT, DBT_PROJECT_DIR, fresh_dir

NODE_KINDS = {"model": "models_s", "test": "tests_s", "unit_test": "tests_s", "operation": "hooks_s"}


@dataclass
class DbtInvocation:
    """What to run: ``dbt <command> --vars <vars>`` in ``project_dir``."""

    variables: str | None
    command: str = "build"
    project_dir: Path = DBT_PROJECT_DIR
    extra_args: tuple[str, ...] = ()


def run_vars(run_date: str) -> str:
    """The vars exactly as a user types them."""
    return "{run_date: " + run_date + "}"


def range_vars(start: str, end: str) -> str:
    return "{start_date: " + start + ", end_date: " + end + "}"


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def log_phases(log_file: Path, spawned_at: float, exited_at: float) -> dict[str, float]:
    """Startup / parse / execute / exit seconds from dbt's JSON log of one invocation."""
    first = found = finished = completed = None
    if not log_file.exists():
        return {}
    for line in log_file.read_text(errors="replace").splitlines():
        try:
            info = json.loads(line)["info"]
        except (ValueError, KeyError):
            continue
        name, ts = info.get("name"), info.get("ts")
        if not ts:
            continue
        if first is None:
            first = _ts(ts)
        if name == "FoundStats":
            found = _ts(ts)
        elif name == "FinishedRunningStats":
            finished = _ts(ts)
        elif name == "CommandCompleted":
            completed = _ts(ts)
    if first is None or found is None:
        return {}
    end_of_run = finished or completed or exited_at
    return {
        "startup_s": max(first - spawned_at, 0.0),
        "parse_s": found - first,
        "execute_s": end_of_run - found,
        "exit_s": max(exited_at - end_of_run, 0.0),
    }


def node_times(run_results: Path) -> tuple[dict[str, float], dict[str, float]]:
    """(seconds per kind of node, seconds per node) from run_results.json."""
    kinds: dict[str, float] = {"models_s": 0.0, "tests_s": 0.0, "hooks_s": 0.0}
    per_node: dict[str, float] = {}
    if not run_results.exists():
        return kinds, per_node
    for result in json.loads(run_results.read_text()).get("results", []):
        unique_id = result["unique_id"]
        seconds = float(result.get("execution_time") or 0.0)
        kind = NODE_KINDS.get(unique_id.split(".", 1)[0])
        if kind:
            kinds[kind] += seconds
        per_node[unique_id] = seconds
    return kinds, per_node


def build(
    invocation: DbtInvocation,
    env: dict[str, str],
    run_dir: Path,
    timeout: float = 3600,
    target_dir: Path | None = None,
) -> measure.Sample:
    """Run dbt once in a fresh ``run_dir`` (target, logs); the sample's ``extra`` holds the breakdown.

    ``target_dir``: a target folder kept across runs instead (dbt's partial-parse state survives).
    """
    fresh_dir(run_dir)
    target = target_dir or run_dir / "target"
    command = [DBT, invocation.command]
    if invocation.variables is not None:
        command += ["--vars", invocation.variables]
    command += [
        "--target-path",
        str(target),
        "--log-path",
        str(run_dir / "logs"),
        "--log-format-file",
        "json",
        *invocation.extra_args,
    ]
    spawned = time.time()
    sample = measure.run(command, log_path=run_dir / "stdout.log", cwd=invocation.project_dir, env=env, timeout=timeout)
    exited = spawned + sample.wall_s
    phases = log_phases(run_dir / "logs" / "dbt.log", spawned, exited)
    kinds, per_node = node_times(target / "run_results.json")
    if phases:
        phases["dbt_per_node_overhead_s"] = max(phases["execute_s"] - sum(kinds.values()), 0.0)
    sample.extra = {"phases": {**phases, **kinds}, "nodes": per_node, "command": " ".join(command)}
    return sample


def phase_medians(samples: list[measure.Sample]) -> dict[str, float]:
    keys: list[str] = []
    for sample in samples:
        for key in sample.extra.get("phases", {}):  # type: ignore[union-attr]
            if key not in keys:
                keys.append(key)
    return {
        key: measure.median(
            s.extra["phases"][key]  # type: ignore[index]
            for s in samples
            if key in s.extra.get("phases", {})  # type: ignore[operator]
        )
        for key in keys
    }


def node_medians(samples: list[measure.Sample]) -> dict[str, float]:
    names: set[str] = set()
    for sample in samples:
        names.update(sample.extra.get("nodes", {}))  # type: ignore[arg-type]
    return {
        name: measure.median(s.extra["nodes"].get(name, 0.0) for s in samples)  # type: ignore[index, union-attr]
        for name in sorted(names)
    }
