"""What the measured child processes run; each prints a JSON summary last (the harness reads it).

python benchmarks/probes.py spawn RESULT_FILE COMMAND...   (how the harness starts every measured command)
python -m benchmarks.probes dag_parse FOLDER
python -m benchmarks.probes generator ecompipe|duckdb ROWS OUT_DIR
python -m benchmarks.probes bare_days RAW_DIR FIRST_DATE DAYS OUT_DIR
python -m benchmarks.probes airflow daily|bulk START END MAX_ACTIVE_RUNS_OR_CHUNK_DAYS
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any


def dag_parse(folder: str) -> dict[str, object]:
    """``DagBag`` of ``folder`` in this fresh process; every subprocess started meanwhile is recorded."""
    started = time.perf_counter()
    from airflow.dag_processing.dagbag import DagBag

    imported = time.perf_counter()
    calls: list[str] = []
    popen = subprocess.Popen

    class RecordingPopen(popen):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            calls.append(f"Popen: {str(args[0] if args else kwargs.get('args'))[:200]}")
            super().__init__(*args, **kwargs)

    def recording(name: str, original: Any) -> Any:
        return lambda *args, **kwargs: calls.append(f"{name}: {str(args[0])[:200]}") or original(*args, **kwargs)

    subprocess.Popen = RecordingPopen  # type: ignore[misc]
    os.system, os.posix_spawn = recording("os.system", os.system), recording("os.posix_spawn", os.posix_spawn)
    bag = DagBag(dag_folder=folder)
    return {
        "import_s": imported - started,
        "parse_s": time.perf_counter() - imported,
        "dag_ids": sorted(bag.dag_ids),
        "tasks": sum(len(dag.tasks) for dag in bag.dags.values()),
        "import_errors": {str(k): str(v)[-500:] for k, v in bag.import_errors.items()},
        "subprocess_calls": calls,
    }


# DuckDB generating a day like the generator's (same columns, formats, dirt and duplicate layout, every
# string quoted as pyarrow's writer does; its own random draws) and writing it with COPY: one statement.
DUCKDB_GENERATE = """
copy (
    with draws as (
        select
            (random() * 86400)::integer as second,
            floor(5000 * pow(random(), 4))::integer + 1 as customer,
            floor(random() * 500)::integer as product,
            round(exp(3.6 + 0.9 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())), 2) as price,
            random() as u_negative, random() as u_huge, round(10000.01 + random() * 89999.99, 2) as huge_price,
            [1, 1, 1, 2, 2, 3, 4, 5][1 + floor(random() * 8)::integer] as quantity,
            random() as u_quantity, -floor(random() * 4)::integer as bad_quantity,
            ['credit_card', 'debit_card', 'paypal', 'apple_pay', 'bank_transfer'][1 + floor(random() * 5)::integer]
                as payment,
            random() as u_empty,
        from range($unique)
    ),
    ordered as (select *, row_number() over (order by second) as n from draws),
    rendered as (
        select
            n,
            'TXN-' || strftime($day::date, '%Y%m%d') || '-' || lpad(n::varchar, 7, '0') as transaction_id,
            'CUST-' || lpad(customer::varchar, 5, '0') as customer_id,
            'PROD-' || lpad((product + 1)::varchar, 4, '0') as product_id,
            ['electronics', 'clothing', 'home', 'books', 'sports', 'beauty', 'toys', 'grocery'][product % 8 + 1]
                as category,
            case when u_huge < 0.002 then huge_price when u_negative < 0.01 then -price else price end as price,
            case when u_quantity < 0.01 then bad_quantity else quantity end as quantity,
            case when u_empty < 0.02 then null else payment end as payment_method,
            strftime($day::timestamp + to_seconds(second), '%Y-%m-%dT%H:%M:%SZ') as "timestamp",
            -- exactly $duplicates rows re-sent, spread evenly, each right after its original
            (n * $duplicates) // $unique > ((n - 1) * $duplicates) // $unique as resent,
        from ordered
    ),
    with_duplicates as (
        select *, 0 as copy from rendered union all select *, 1 as copy from rendered where resent
    )
    select * exclude (n, resent, copy) from with_duplicates order by n, copy
) to '{path}' (header, force_quote (transaction_id, customer_id, product_id, category, payment_method, "timestamp"))
"""


def generator(impl: str, rows: str, out_dir: str) -> dict[str, object]:
    day, count = date(2024, 3, 1), int(rows)
    started = time.perf_counter()
    if impl == "ecompipe":
        from ecompipe.pipeline.generator import generate_partition

        path = Path(str(generate_partition(day, Path(out_dir) / impl, rows=count, force=True)["path"]))
    else:
        import duckdb

        path = Path(out_dir) / impl / "transactions.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        unique = count - int(count * 0.01)
        with duckdb.connect() as con:
            con.execute("set enable_progress_bar = false")
            started = time.perf_counter()  # the connection is not part of the work
            sql = DUCKDB_GENERATE.format(path=str(path).replace("'", "''"))
            con.execute(sql, {"unique": unique, "duplicates": count - unique, "day": day.isoformat()})
    seconds = time.perf_counter() - started
    with path.open("rb") as handle:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    return {"seconds": seconds, "rows": lines - 1, "bytes": path.stat().st_size}


def bare_days(raw_dir: str, first: str, days: str, out_dir: str) -> dict[str, object]:
    """The bare DuckDB floor over consecutive dates, in this one process."""
    from benchmarks import bare_duckdb

    totals = {"clean_rows": 0, "feature_rows": 0, "days": int(days)}
    for offset in range(int(days)):
        day = (date.fromisoformat(first) + timedelta(days=offset)).isoformat()
        counts = bare_duckdb.run(Path(raw_dir) / day / "transactions.csv", day, Path(out_dir))
        totals = {key: totals[key] + counts.get(key, 0) for key in totals}
    return totals


def _tree_cpu_s() -> float:
    """CPU seconds of this process and of its descendants, finished and live, now."""
    import psutil

    total = sum(sum(resource.getrusage(who)[:2]) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            total += sum(child.cpu_times()[:4])
    return total


def airflow(mode: str, start: str, end: str, number: str) -> dict[str, object]:
    """Start Airflow (ecompipe.local_airflow), backfill the daily DAG or run the bulk DAG, stop Airflow.

    This process is a subreaper and reaps everything after the stop, so the rusage the harness reads
    from it covers the whole Airflow process tree: every component, task and dbt process.
    """
    from ecompipe import local_airflow

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    began = time.perf_counter()
    outcome = None
    try:
        local_airflow.start(wait=True)
        started, started_cpu = time.perf_counter(), _tree_cpu_s()
        for attempt in range(40):  # the bulk DAG may be parsed a little after the daily one
            try:
                if mode == "daily":
                    outcome = local_airflow.backfill(start, end, int(number), "none", timeout=6 * 3600)
                else:
                    outcome = local_airflow.bulk_backfill(start, end, int(number), timeout=6 * 3600)
                break
            except Exception as exc:  # the REST API's "404 Not Found", in whichever client's words
                if "404" not in str(exc) or attempt == 39:
                    raise
                time.sleep(3)
        finished, run_cpu_s = time.perf_counter(), _tree_cpu_s() - started_cpu
    finally:
        local_airflow.stop()
        _reap()
    times = {"start_s": started - began, "run_s": finished - started, "stop_s": time.perf_counter() - finished}
    return {"outcome": outcome, **times, "run_cpu_s": run_cpu_s}


def _reap(timeout: float = 60) -> None:
    """Wait for every descendant (so that its rusage counts); kill what is still alive after ``timeout``."""
    import psutil

    deadline = time.monotonic() + timeout
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0]:
                continue
        except ChildProcessError:
            return
        if time.monotonic() > deadline:
            for child in psutil.Process().children():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGKILL)
        time.sleep(0.1)


def spawn(result_file: str, *command: str) -> int:
    """Run ``command`` as the child of this small process; its wall and CPU seconds and the largest
    resident set of it and its descendants (``wait4``) go to ``result_file``. Started straight from the
    harness, a command would inherit the harness's own memory high-water mark: exec keeps it."""
    started_at, started = time.time(), time.perf_counter()
    _, status, usage = os.wait4(subprocess.Popen(command).pid, 0)
    cpu_s, code = usage.ru_utime + usage.ru_stime, os.waitstatus_to_exitcode(status)
    result = {"wall_s": time.perf_counter() - started, "cpu_s": cpu_s, "max_rss_mb": usage.ru_maxrss / 1024}
    Path(result_file).write_text(json.dumps(result | {"returncode": code, "started_at": started_at}))
    return code


PROBES = {"dag_parse": dag_parse, "generator": generator, "bare_days": bare_days, "airflow": airflow}

if __name__ == "__main__" and sys.argv[1] == "spawn":
    raise SystemExit(spawn(*sys.argv[2:]))
if __name__ == "__main__":
    result = PROBES[sys.argv[1]](*sys.argv[2:])
    print(json.dumps(result))
    raise SystemExit(0 if result.get("outcome", 0) == 0 else 1)
