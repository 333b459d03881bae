"""1. One day, side by side: `dbt build` (CLI) vs a bare DuckDB script (the floor) vs the lab's pandas.

Every repetition starts from the same warehouse (a small earlier day loaded, so dbt takes the
incremental path a daily run takes) and the three implementations alternate, so that load from
other work on the machine hits them alike. The smallest size shows dbt's fixed start-up cost.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks import dbt_runs, measure, verify
from benchmarks.common import BASE_DAY, BENCH_DIR, ONE_DAY, PYTHON, Config, base_env, iso
from benchmarks.datasets import Sandbox

BARE_SCRIPT = BENCH_DIR / "bare_duckdb.py"
PANDAS_SCRIPT = BENCH_DIR / "lab_pandas.py"
EXPORTS = (("processed", "transactions_clean.parquet"), ("features/daily", "features.parquet"))


def _export_files(base: Path, day: str) -> list[Path]:
    return [base / folder / f"date={day}" / name for folder, name in EXPORTS]


def _script(script: Path, sandbox: Sandbox, out: Path, log: Path) -> measure.Sample:
    day = iso(ONE_DAY)
    command = [PYTHON, str(script), "--csv", str(sandbox.raw_file(ONE_DAY)), "--date", day, "--out", str(out)]
    sample = measure.run(command, log_path=log, env=base_env())
    sample.extra = verify.last_json_line(log)
    return sample


def _verify(sandbox: Sandbox, bare: measure.Sample, pandas: measure.Sample) -> dict[str, object]:
    day = iso(ONE_DAY)
    dbt_files = _export_files(sandbox.data_dir, day)
    bare_files = _export_files(sandbox.root / "bare", day)
    dbt_counts = [verify.row_count(path) for path in dbt_files]
    counts = {
        "dbt": dbt_counts,
        "bare_duckdb": [bare.extra["clean_rows"], bare.extra["feature_rows"]],
        "pandas": [pandas.extra["clean_rows"], pandas.extra["feature_rows"]],
    }
    same_counts = counts["dbt"] == counts["bare_duckdb"] == counts["pandas"]
    content = {path.name: verify.compare_parquet(ref, path) for ref, path in zip(dbt_files, bare_files, strict=True)}
    return {
        "row_counts": counts,
        "row_counts_equal": same_counts,
        "bare_equals_dbt": all(item["equal"] for item in content.values()),
        "bare_vs_dbt": content,
    }


def one_size(cfg: Config, rows: int) -> dict[str, object]:
    sandbox = Sandbox.create(cfg.work_dir / "one_day" / f"rows={rows}", cfg.work_dir)
    sandbox.link([BASE_DAY], cfg.startup_rows)
    sandbox.link([ONE_DAY], rows)
    runs = sandbox.root / "runs"
    # Untimed: the earlier day (creates the tables) and one warm-up of each script (page cache, imports).
    dbt_runs.build(dbt_runs.DbtInvocation(dbt_runs.run_vars(iso(BASE_DAY))), sandbox.env(), runs / "base")
    snapshot = sandbox.snapshot("base")
    _script(BARE_SCRIPT, sandbox, sandbox.root / "bare", runs / "bare-warmup.log")
    _script(PANDAS_SCRIPT, sandbox, sandbox.root / "pandas", runs / "pandas-warmup.log")

    invocation = dbt_runs.DbtInvocation(dbt_runs.run_vars(iso(ONE_DAY)))
    samples: dict[str, list[measure.Sample]] = {"dbt": [], "bare_duckdb": [], "pandas": []}
    for rep in range(cfg.reps):
        sandbox.restore(snapshot)
        samples["dbt"].append(dbt_runs.build(invocation, sandbox.env(), runs / f"dbt-{rep}"))
        samples["bare_duckdb"].append(_script(BARE_SCRIPT, sandbox, sandbox.root / "bare", runs / f"bare-{rep}.log"))
        samples["pandas"].append(_script(PANDAS_SCRIPT, sandbox, sandbox.root / "pandas", runs / f"pandas-{rep}.log"))

    result: dict[str, object] = {name: measure.summarize(items) for name, items in samples.items()}
    result["dbt_phases"] = dbt_runs.phase_medians(samples["dbt"])
    result["dbt_nodes"] = dbt_runs.node_medians(samples["dbt"])
    result["verification"] = _verify(sandbox, samples["bare_duckdb"][-1], samples["pandas"][-1])
    result["rows"] = rows
    dbt, bare, pandas = (result[name] for name in ("dbt", "bare_duckdb", "pandas"))
    result["ratios"] = {
        "dbt_over_bare_wall": dbt["wall_s"] / bare["wall_s"],  # type: ignore[index, operator]
        "dbt_over_bare_cpu": dbt["cpu_s"] / bare["cpu_s"],  # type: ignore[index, operator]
        "pandas_over_dbt_wall": pandas["wall_s"] / dbt["wall_s"],  # type: ignore[index, operator]
        "pandas_over_dbt_cpu": pandas["cpu_s"] / dbt["cpu_s"],  # type: ignore[index, operator]
    }
    return result


def run(cfg: Config) -> dict[str, object]:
    sizes = [cfg.startup_rows, *[rows for rows in cfg.sizes if rows != cfg.startup_rows]]
    by_size = {}
    for rows in sizes:
        print(f"  one day, {rows:,} rows ...", flush=True)
        by_size[str(rows)] = one_size(cfg, rows)
    return {"by_rows": by_size, "startup_rows": cfg.startup_rows}
