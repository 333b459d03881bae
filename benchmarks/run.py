"""Entry point of `make bench`: run the benchmark sections, write results/latest.{json,md}.

    python -m benchmarks.run                     # everything (about 10-15 minutes on 2 cores)
    python -m benchmarks.run --only one_day,dag_parse   # some sections; merged into latest.json
    python -m benchmarks.run --quick             # small sizes, 1 run each: a smoke test (~3 minutes)
    BENCH_BACKFILL=1 python -m benchmarks.run    # + a real-scheduler backfill (make airflow/backfill)
    python -m benchmarks.run --only year         # opt-in: a year, bulk vs per-day vs bare (make bench-year;
                                                 # writes results/year.{json,md}, BENCH_YEAR_* knobs)

Knobs (environment or flags): BENCH_REPS, BENCH_SIZES, BENCH_STARTUP_ROWS, BENCH_HISTORY_DAYS,
BENCH_HISTORY_ROWS, BENCH_AIRFLOW_ROWS, BENCH_GENERATOR_ROWS, BENCH_BACKFILL, BENCH_BACKFILL_DAYS,
BENCH_WORK_DIR (default benchmarks/.work). Results go to benchmarks/results/ (BENCH_RESULTS_DIR).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import (
    bench_airflow,
    bench_dag_parse,
    bench_generator,
    bench_incremental,
    bench_one_day,
    bench_year,
    report,
)
from benchmarks.common import (
    RESULTS_DIR,
    Config,
    machine,
    versions,
    write_json_atomically,
    write_text_atomically,
)
from benchmarks.targets import evaluate

SECTIONS: dict[str, Callable[[Config], dict[str, object]]] = {
    "one_day": bench_one_day.run,
    "incremental": bench_incremental.run,
    "dag_parse": bench_dag_parse.run,
    "airflow": bench_airflow.run,
    "generator": bench_generator.run,
    "backfill": bench_airflow.run_backfill,  # opt-in: BENCH_BACKFILL=1, --backfill or --only backfill
    "year": bench_year.run_section,  # opt-in: --only year (about an hour at full scale)
}
OPT_IN = ("backfill", "year")


def parse_args(argv: list[str] | None) -> tuple[Config, Path]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help=f"comma-separated sections: {', '.join(SECTIONS)}")
    parser.add_argument("--reps", type=int, help="runs per measurement (median reported)")
    parser.add_argument("--sizes", help="raw rows of the one-day comparison, e.g. 100000,1000000")
    parser.add_argument("--history-days", type=int)
    parser.add_argument("--quick", action="store_true", help="small sizes and one run each (smoke test)")
    parser.add_argument("--backfill", action="store_true", help="also a real-scheduler backfill (slow)")
    parser.add_argument("--render-only", action="store_true", help="only re-render latest.md from the JSON files")
    parser.add_argument("--results-dir", type=Path, default=Path(os.environ.get("BENCH_RESULTS_DIR", RESULTS_DIR)))
    args = parser.parse_args(argv)
    cfg = Config()
    if args.quick:
        cfg.reps, cfg.sizes, cfg.history_days, cfg.history_rows = 1, (20_000,), 5, 5_000
        cfg.airflow_rows, cfg.generator_rows = 5_000, 100_000
    if args.reps:
        cfg.reps = args.reps
    if args.sizes:
        cfg.sizes = tuple(int(part) for part in args.sizes.split(","))
    if args.history_days:
        cfg.history_days = args.history_days
    cfg.backfill = cfg.backfill or args.backfill
    default = [name for name in SECTIONS if name not in OPT_IN or (name == "backfill" and cfg.backfill)]
    cfg.sections = tuple(args.only.split(",")) if args.only else tuple(default)
    unknown = set(cfg.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    cfg.render_only = args.render_only
    return cfg, args.results_dir


def run_sections(cfg: Config) -> tuple[dict[str, Any], list[str]]:
    sections: dict[str, Any] = {}
    errors: list[str] = []
    for name in cfg.sections:
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        try:
            result = SECTIONS[name](cfg)
        except Exception as exc:  # one broken section must not lose the others' numbers
            errors.append(f"{name}: {exc!r}"[:3000])
            traceback.print_exc()
            continue
        result["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        result["section_s"] = time.perf_counter() - started
        sections[name] = result
        print(f"   {name} done in {result['section_s']:.0f}s", flush=True)
    return sections, errors


def check_outputs(sections: dict[str, Any]) -> list[str]:
    """The compared implementations must agree on the data, or the timings mean nothing."""
    problems = []
    for rows, item in (sections.get("one_day") or {}).get("by_rows", {}).items():
        check = item["verification"]
        if not check["row_counts_equal"]:
            problems.append(f"one_day {rows} rows: row counts differ: {check['row_counts']}")
        if not check["bare_equals_dbt"]:
            problems.append(f"one_day {rows} rows: bare DuckDB output differs from dbt's: {check['bare_vs_dbt']}")
    year = sections.get("year")
    if year and not year["verification_equal"]:
        problems.append("year: the bulk, per-day and bare DuckDB outputs differ (see results/year.md)")
    parse = sections.get("dag_parse")
    if parse and parse["dags"]["import_errors"]:
        problems.append(f"dag_parse: import errors {parse['dags']['import_errors']}")
    return problems


def _experiments(results_dir: Path) -> dict[str, Any] | None:
    path = results_dir / "experiments.json"
    return json.loads(path.read_text()) if path.exists() else None


def render_only(results_dir: Path) -> int:
    results = json.loads((results_dir / "latest.json").read_text())
    targets = evaluate(results["sections"])
    write_text_atomically(results_dir / "latest.md", report.render(results, targets, _experiments(results_dir)))
    print(f"Rendered {results_dir / 'latest.md'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    cfg, results_dir = parse_args(argv)
    os.environ["BENCH_RESULTS_DIR"] = str(results_dir)  # sections writing their own files (year) follow it
    if cfg.render_only:
        return render_only(results_dir)
    started = time.perf_counter()
    facts = {"machine": machine(), "versions": versions()}
    sections, errors = run_sections(cfg)
    errors += check_outputs(sections)
    latest_json = results_dir / "latest.json"
    core = {name for name in SECTIONS if name not in OPT_IN}
    if not core <= set(cfg.sections) and latest_json.exists():
        previous = json.loads(latest_json.read_text()).get("sections", {})
        sections = {**previous, **sections}
    results: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m benchmarks.run " + " ".join(sys.argv[1:] if argv is None else argv),
        "duration_s": time.perf_counter() - started,
        **facts,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "config": cfg.as_dict(),
        "sections": sections,
        "errors": errors,
    }
    targets = evaluate(sections)
    results["targets"] = [target.as_dict() for target in targets]
    write_json_atomically(latest_json, results)
    write_text_atomically(results_dir / "latest.md", report.render(results, targets, _experiments(results_dir)))
    print(f"\nResults: {latest_json} and {results_dir / 'latest.md'} ({results['duration_s'] / 60:.1f} min)")
    for target in targets:
        verdict = {True: "PASS", False: "MISS", None: "n/a"}[target.passed]
        value = "n/a" if target.value is None else f"{target.value:.2f}{target.unit}"
        print(f"  {verdict:4}  {target.what}: {value} (target {target.goal})")
    for error in errors:
        print(f"  ERROR {error[:500]}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
