"""2. Incremental flatness: a day's `dbt build` on top of N days of history vs on an empty warehouse.

History is loaded with one ranged invocation (``start_date``/``end_date``). Then, each repetition
from the same saved state:

* day 1: the first run of an empty warehouse (``run_date`` = day 1);
* day 2: one day of history (same incremental code path as day N+1, history of one day);
* day N+1: N days of history.

Per-node times of day N+1 against day 2 show which models or tests grow with history.
"""

from __future__ import annotations

from benchmarks import dbt_runs, measure
from benchmarks.common import HISTORY_START, Config, days_from, iso
from benchmarks.datasets import Sandbox


def _growth(day2: dict[str, float], last: dict[str, float], top: int = 6) -> list[dict[str, object]]:
    rows = [
        {"node": node, "day2_s": day2.get(node, 0.0), "dayN_s": seconds, "growth_s": seconds - day2.get(node, 0.0)}
        for node, seconds in last.items()
    ]
    return sorted(rows, key=lambda row: -float(row["growth_s"]))[:top]  # type: ignore[arg-type]


def run(cfg: Config) -> dict[str, object]:
    days = days_from(HISTORY_START, cfg.history_days + 1)
    first, second, history_end, last = days[0], days[1], days[-2], days[-1]
    sandbox = Sandbox.create(cfg.work_dir / "incremental", cfg.work_dir)
    print(f"  generating/linking {len(days)} days of {cfg.history_rows:,} rows ...", flush=True)
    sandbox.link(days, cfg.history_rows)
    runs = sandbox.root / "runs"
    env = sandbox.env()

    def build(variables: str, name: str) -> measure.Sample:
        return dbt_runs.build(dbt_runs.DbtInvocation(variables), env, runs / name)

    sandbox.reset_warehouse()
    build(dbt_runs.run_vars(iso(first)), "warmup-day1")
    after_day1 = sandbox.snapshot("after_day1")
    print(f"  loading history {iso(second)} .. {iso(history_end)} in one ranged invocation ...", flush=True)
    ranged = build(dbt_runs.range_vars(iso(second), iso(history_end)), "history-range")
    after_history = sandbox.snapshot("after_history")
    warehouse_mb = after_history.stat().st_size / 2**20

    samples: dict[str, list[measure.Sample]] = {"day1": [], "day2": [], "dayN": []}
    for rep in range(cfg.reps):
        sandbox.reset_warehouse()
        samples["day1"].append(build(dbt_runs.run_vars(iso(first)), f"day1-{rep}"))
        sandbox.restore(after_day1)
        samples["day2"].append(build(dbt_runs.run_vars(iso(second)), f"day2-{rep}"))
        sandbox.restore(after_history)
        samples["dayN"].append(build(dbt_runs.run_vars(iso(last)), f"dayN-{rep}"))

    result: dict[str, object] = {name: measure.summarize(items) for name, items in samples.items()}
    for name, items in samples.items():
        result[f"{name}_phases"] = dbt_runs.phase_medians(items)
    history_rows = cfg.history_rows * (cfg.history_days - 1)
    result.update(
        {
            "history_days": cfg.history_days,
            "rows_per_day": cfg.history_rows,
            "dates": {"day1": iso(first), "day2": iso(second), "dayN": iso(last)},
            "history_load": {
                "range": [iso(second), iso(history_end)],
                "rows": history_rows,
                "wall_s": ranged.wall_s,
                "cpu_s": ranged.cpu_s,
                "rows_per_s": history_rows / ranged.wall_s,
                "peak_tree_rss_mb": ranged.peak_tree_rss_mb,
                "max_rss_mb": ranged.max_rss_mb,
                "phases": ranged.extra.get("phases"),
            },
            "warehouse_mb_after_history": warehouse_mb,
            "node_growth_dayN_vs_day2": _growth(
                dbt_runs.node_medians(samples["day2"]), dbt_runs.node_medians(samples["dayN"])
            ),
        }
    )
    day1, day2, day_n = (result[name]["wall_s"] for name in ("day1", "day2", "dayN"))  # type: ignore[index]
    result["ratios"] = {"dayN_over_day1_wall": day_n / day1, "dayN_over_day2_wall": day_n / day2}
    result["ratios"]["dayN_over_day1_cpu"] = result["dayN"]["cpu_s"] / result["day1"]["cpu_s"]  # type: ignore[index]
    return result
