"""5. Generator throughput: ecompipe's generator vs DuckDB generating and writing the same rows to CSV."""

from __future__ import annotations

from benchmarks import measure, verify
from benchmarks.common import BENCH_DIR, PYTHON, Config, base_env, fresh_dir

PROBE = BENCH_DIR / "generator_probe.py"
IMPLEMENTATIONS = ("ecompipe", "duckdb", "duckdb-write")


def run(cfg: Config) -> dict[str, object]:
    root = fresh_dir(cfg.work_dir / "generator")
    rows = cfg.generator_rows
    samples: dict[str, list[measure.Sample]] = {name: [] for name in IMPLEMENTATIONS}
    for rep in range(cfg.reps):
        for name in IMPLEMENTATIONS:
            log = root / f"{name}-{rep}.log"
            command = [PYTHON, str(PROBE), name, "--rows", str(rows), "--out", str(root / "out")]
            sample = measure.run(command, log_path=log, env=base_env())
            sample.extra = verify.last_json_line(log)
            samples[name].append(sample)
    result: dict[str, object] = {"rows": rows}
    for name, items in samples.items():
        summary = measure.summarize(items)
        seconds = measure.median(float(s.extra["seconds"]) for s in items)  # type: ignore[arg-type]
        summary.update(
            {
                "seconds": seconds,
                "rows_per_s": rows / seconds,
                "bytes": items[-1].extra["bytes"],
                "rows_written": items[-1].extra["rows"],
            }
        )
        if name == "ecompipe":
            summary["build_s"] = measure.median(float(s.extra["build_s"]) for s in items)  # type: ignore[arg-type]
            summary["write_s"] = measure.median(float(s.extra["write_s"]) for s in items)  # type: ignore[arg-type]
        result[name] = summary
    ours, duck = result["ecompipe"], result["duckdb"]
    result["ratios"] = {
        "throughput_vs_duckdb": ours["rows_per_s"] / duck["rows_per_s"],  # type: ignore[index, operator]
        "throughput_vs_duckdb_write_only": ours["rows_per_s"] / result["duckdb-write"]["rows_per_s"],  # type: ignore[index, operator]
        "process_wall_vs_duckdb": duck["wall_s"] / ours["wall_s"],  # type: ignore[index, operator]
    }
    return result
