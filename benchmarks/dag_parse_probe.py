"""Parse a DAG folder with Airflow's DagBag in this (fresh) process and report timings as JSON.

    python benchmarks/dag_parse_probe.py DAG_FOLDER

``import_s``: importing Airflow's DagBag (what the dag-processor has already paid for);
``parse_s``: ``DagBag(dag_folder=...)``, i.e. importing the DAG files, Cosmos and the dbt manifest
included. Every ``subprocess.Popen`` (hence ``subprocess.run``), ``os.system`` and ``os.posix_spawn``
during the parse is recorded (and let through): parsing must start none.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any


def _recording(original: Callable[..., Any], calls: list[str], name: str) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append(f"{name}: {str(args[0] if args else kwargs)[:200]}")
        return original(*args, **kwargs)

    return wrapper


def main(folder: str) -> int:
    started = time.perf_counter()
    from airflow.dag_processing.dagbag import DagBag

    imported = time.perf_counter()
    calls: list[str] = []
    original_popen = subprocess.Popen

    class RecordingPopen(original_popen):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            calls.append(f"subprocess.Popen: {str(args[0] if args else kwargs.get('args'))[:200]}")
            super().__init__(*args, **kwargs)

    subprocess.Popen = RecordingPopen  # type: ignore[misc]
    os.system = _recording(os.system, calls, "os.system")  # type: ignore[assignment]
    os.posix_spawn = _recording(os.posix_spawn, calls, "os.posix_spawn")  # type: ignore[assignment]
    parse_started = time.perf_counter()
    bag = DagBag(dag_folder=folder)
    parsed = time.perf_counter()
    print(
        json.dumps(
            {
                "import_s": imported - started,
                "parse_s": parsed - parse_started,
                "dag_ids": sorted(bag.dag_ids),
                "tasks": sum(len(dag.tasks) for dag in bag.dags.values()),
                "import_errors": {str(k): str(v)[-500:] for k, v in bag.import_errors.items()},
                "subprocess_calls": calls,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
