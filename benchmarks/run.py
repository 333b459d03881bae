"""The one benchmark runner (`make bench`): run the benchmarks, write results/latest.json and latest.md.

    python -m benchmarks.run                            # the default set (~15 min on 2 cores)
    python -m benchmarks.run --only one_day,dag_parse   # some; the others' last results are kept
    python -m benchmarks.run --quick                    # small sizes, one run each (a smoke test)
    python -m benchmarks.run --only year                # the year through the bulk DAG (~1 h; opt-in)
    python -m benchmarks.run --backfill                 # + a real-scheduler backfill (opt-in)

Every knob is a flag and a BENCH_* variable (flags win): --reps/BENCH_REPS, --sizes/BENCH_SIZES,
--history-days/BENCH_HISTORY_DAYS, ... (see --help). Scratch data goes to benchmarks/.work/.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import report
from benchmarks.cases import BENCHMARKS, OPT_IN
from benchmarks.harness import BENCH_DIR, QUICK, Config, machine, versions, write_atomically


def parse_args(argv: list[str]) -> tuple[Config, list[str], Path]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help=f"comma-separated, from: {', '.join(BENCHMARKS)}")
    parser.add_argument("--quick", action="store_true", help="small sizes and one run each")
    parser.add_argument("--results-dir", type=Path, default=BENCH_DIR / "results")
    defaults = Config()
    for item in fields(Config):
        value = getattr(defaults, item.name)
        shown = " ".join(map(str, value)) if isinstance(value, tuple) else value
        if isinstance(value, bool):
            parser.add_argument(f"--{item.name.replace('_', '-')}", action="store_const", const="1")
        else:
            metavar = "N,N" if isinstance(value, tuple) else "DIR" if isinstance(value, Path) else "N"
            parser.add_argument(f"--{item.name.replace('_', '-')}", metavar=metavar, help=f"default {shown}")
    args = parser.parse_args(argv)
    cfg = Config()
    for name, value in (QUICK if args.quick else {}).items():
        setattr(cfg, name, value)
    cfg.from_environment()
    for item in fields(Config):
        if getattr(args, item.name) is not None:
            cfg.set(item.name, getattr(args, item.name))
    default = [name for name in BENCHMARKS if name not in OPT_IN or (name == "backfill" and cfg.backfill)]
    chosen = args.only.split(",") if args.only else default
    unknown = sorted(set(chosen) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHMARKS)}")
    return cfg, chosen, args.results_dir


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    cfg, chosen, results_dir = parse_args(argv)
    load_at_start = os.getloadavg()
    sections: dict[str, Any] = {}
    errors: list[str] = []
    for name in chosen:
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        try:
            result = BENCHMARKS[name](cfg)
        except Exception as exc:  # one broken benchmark must not lose the others' numbers
            errors.append(f"{name}: {exc!r}"[:3000])
            traceback.print_exc()
            continue
        result |= {
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "seconds": time.perf_counter() - started,
        }
        sections[name] = result
        print(f"   {name} done in {result['seconds']:.0f} s", flush=True)
    problems = [
        f"one_day {rows} rows: the outputs differ"
        for rows, item in sections.get("one_day", {}).get("sizes", {}).items()
        if not item["same_output"]
    ]
    problems += [
        f"year: {check} differ"
        for check, item in sections.get("year", {}).get("checks", {}).items()
        if not item["equal"]
    ]
    problems += [
        f"dag_parse: import errors {e}"
        for e in [sections.get("dag_parse", {}).get("dags", {}).get("import_errors")]
        if e
    ]
    errors += problems
    latest = results_dir / "latest.json"
    previous = json.loads(latest.read_text())["sections"] if latest.exists() else {}
    results = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m benchmarks.run", *argv]),
        "machine": machine(),
        "versions": versions(),
        "load_average": {"start": [round(x, 2) for x in load_at_start], "end": [round(x, 2) for x in os.getloadavg()]},
        "config": {key: str(value) if isinstance(value, Path) else value for key, value in cfg.as_dict().items()},
        "sections": {
            name: sections.get(name, previous.get(name)) for name in BENCHMARKS if name in sections or name in previous
        },
        "errors": errors,
    }
    write_atomically(latest, json.dumps(results, indent=1) + "\n")
    write_atomically(results_dir / "latest.md", report.render(results))
    print(f"\nResults: {latest} and {results_dir / 'latest.md'}")
    for what, goal, value, unit, passed in report.targets(results["sections"]):
        shown = "n/a" if value is None else f"{value:.{2 if unit else 0}f}{unit}"
        print(f"  {({True: 'PASS', False: 'MISS', None: 'n/a'})[passed]:4}  {what}: {shown} (target {goal})")
    for error in errors:
        print(f"  ERROR {error[:500]}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
