"""Render the results dictionary as Markdown (benchmarks/results/latest.md)."""

from __future__ import annotations

from typing import Any

from benchmarks.targets import Target


def _s(value: Any, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _mb(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):,.0f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines + [""]


def _verdict(target: Target) -> str:
    return {True: "**PASS**", False: "**MISS**", None: "n/a"}[target.passed]


def header(results: dict[str, Any]) -> list[str]:
    machine, versions = results["machine"], results["versions"]
    lines = [
        "# Benchmarks: latest results",
        "",
        f"Generated {results['generated_at']} by `{results['command']}` in {results['duration_s'] / 60:.1f} min "
        f"(medians of {results['config']['reps']} runs unless said otherwise).",
        "",
        "Sections (measured at, minutes): "
        + ", ".join(
            f"{name} ({str(item.get('measured_at', '?'))[11:16]}, {float(item.get('section_s', 0)) / 60:.1f})"
            for name, item in results["sections"].items()
        )
        + ".",
        "",
        f"Machine: {machine['cores_logical']} logical cores ({machine['cpu_model']}), "
        f"{machine['memory_total_gib']} GiB RAM, {machine['platform']}. Load average at start "
        f"{machine['load_average_at_start']}, at end {results.get('load_average_at_end')}.",
        "",
        "**Shared machine**: other work ran alongside these measurements, so wall times are noisy "
        "(each comparison alternates its contenders run by run so that load hits them alike). CPU "
        "seconds (user + system, children included) are steadier and are shown next to wall times.",
        "",
        "Versions: " + ", ".join(f"{name} {version}" for name, version in versions.items()) + ".",
        "",
    ]
    return lines


def targets_section(targets: list[Target]) -> list[str]:
    rows = [[t.what, t.goal, f"{_s(t.value)}{t.unit}", _verdict(t)] for t in targets]
    return ["## Targets", "", *_table(["measure", "target", "measured", "result"], rows)]


def one_day_section(data: dict[str, Any]) -> list[str]:
    lines = [
        "## 1. One day: dbt build vs bare DuckDB vs the lab's pandas",
        "",
        "`dbt build --vars '{run_date: D}'` (CLI, incremental path: an earlier day is loaded) vs "
        "`benchmarks/bare_duckdb.py` (same cleaning, aggregates, features and the two Parquet files, "
        "no warehouse) vs `benchmarks/lab_pandas.py` (the lab's functions + the two files). Wall s (CPU s).",
        "",
    ]
    rows = []
    for rows_key, item in data["by_rows"].items():
        ratios = item["ratios"]
        rows.append(
            [
                f"{int(rows_key):,}",
                f"{_s(item['dbt']['wall_s'])} ({_s(item['dbt']['cpu_s'])})",
                f"{_s(item['bare_duckdb']['wall_s'])} ({_s(item['bare_duckdb']['cpu_s'])})",
                f"{_s(item['pandas']['wall_s'])} ({_s(item['pandas']['cpu_s'])})",
                f"{_s(ratios['dbt_over_bare_wall'])}x ({_s(ratios['dbt_over_bare_cpu'])}x)",
                f"{_s(ratios['pandas_over_dbt_wall'])}x ({_s(ratios['pandas_over_dbt_cpu'])}x)",
                "yes" if item["verification"]["row_counts_equal"] and item["verification"]["bare_equals_dbt"] else "NO",
            ]
        )
    header_row = ["raw rows", "dbt build", "bare DuckDB", "pandas", "dbt / bare", "pandas / dbt", "same output"]
    lines += _table(header_row, rows)
    lines += [
        "Where dbt's time goes (median seconds; `startup` = Python imports to dbt's first log line, "
        "`parse` = full project parse, forced by every new `--vars`, `per-node` = dbt's own work "
        "between and around nodes):",
        "",
    ]
    phase_keys = ["startup_s", "parse_s", "models_s", "tests_s", "hooks_s", "dbt_per_node_overhead_s", "exit_s"]
    rows = [
        [f"{int(k):,}", *[_s(item["dbt_phases"].get(p)) for p in phase_keys], _s(item["dbt"]["wall_s"])]
        for k, item in data["by_rows"].items()
    ]
    lines += _table(["raw rows", "startup", "parse", "models", "tests", "hooks", "per-node", "exit", "total"], rows)
    largest = list(data["by_rows"].values())[-1]
    slowest = sorted(largest["dbt_nodes"].items(), key=lambda kv: -kv[1])[:8]
    lines += [f"Slowest dbt nodes at {int(largest['rows']):,} rows (median s):", ""]
    lines += _table(["node", "seconds"], [[f"`{name}`", _s(sec)] for name, sec in slowest])
    counts = largest["verification"]["row_counts"]
    lines += [
        f"Row counts (clean, features) at {int(largest['rows']):,} rows: dbt {counts['dbt']}, bare "
        f"{counts['bare_duckdb']}, pandas {counts['pandas']}; bare DuckDB's files equal dbt's, row for row: "
        f"{largest['verification']['bare_equals_dbt']}.",
        "",
    ]
    return lines


def incremental_section(data: dict[str, Any]) -> list[str]:
    load = data["history_load"]
    days = data["history_days"]
    lines = [
        f"## 2. Incremental cost: day {days + 1} on {days} days of history vs day 1",
        "",
        f"{data['rows_per_day']:,} raw rows a day. History ({load['range'][0]} .. {load['range'][1]}, "
        f"{load['rows']:,} rows) loaded by one ranged invocation in {_s(load['wall_s'], 1)} s "
        f"({load['rows_per_s']:,.0f} rows/s, peak {_mb(load['max_rss_mb'])} MB); warehouse "
        f"{_mb(data['warehouse_mb_after_history'])} MB.",
        "",
    ]
    rows = [
        ["day 1 (empty warehouse)", _s(data["day1"]["wall_s"]), _s(data["day1"]["cpu_s"]), "1.00x"],
        ["day 2 (1 day of history)", _s(data["day2"]["wall_s"]), _s(data["day2"]["cpu_s"]),
         f"{_s(data['day2']['wall_s'] / data['day1']['wall_s'])}x"],
        [f"day {days + 1} ({days} days of history)", _s(data["dayN"]["wall_s"]), _s(data["dayN"]["cpu_s"]),
         f"{_s(data['ratios']['dayN_over_day1_wall'])}x"],
    ]  # fmt: skip
    lines += _table(["run", "wall s", "CPU s", "vs day 1"], rows)
    lines += [f"Nodes that grew most from day 2 to day {days + 1} (median s):", ""]
    growth = [
        [f"`{g['node']}`", _s(g["day2_s"]), _s(g["dayN_s"]), _s(g["growth_s"])]
        for g in data["node_growth_dayN_vs_day2"]
    ]
    lines += _table(["node", "day 2", f"day {days + 1}", "growth"], growth)
    return lines


def dag_parse_section(data: dict[str, Any]) -> list[str]:
    lines = [
        "## 3. DAG parse time",
        "",
        "`DagBag(dag_folder=...)` in a fresh process each time (Airflow already imported, as in the "
        "dag-processor); `Popen`, `os.system` and `os.posix_spawn` recorded during the parse.",
        "",
    ]
    rows = [
        [name, _s(item["parse_s"]), _s(item["import_airflow_s"]), _s(item["wall_s"]), ", ".join(item["dag_ids"]),
         str(item["tasks"]), str(len(item["subprocess_calls"])), str(len(item["import_errors"]))]
        for name, item in (("dags/", data["dags"]), ("one empty DAG", data["empty"]))
    ]  # fmt: skip
    lines += _table(
        ["folder", "parse s", "import Airflow s", "process s", "DAGs", "tasks", "subprocesses", "import errors"], rows
    )
    lines += [f"Cost of dags/ over an empty DAG: {_s(data['overhead_over_empty_s'])} s.", ""]
    return lines


def airflow_section(data: dict[str, Any], backfill: dict[str, Any] | None = None) -> list[str]:
    af, dbt = data["airflow_dags_test"], data["dbt_build"]
    totals = af["totals"]
    lines = [
        "## 4. One Airflow DAG run vs a plain dbt build",
        "",
        f"`airflow dags test end_to_end_data_pipeline <D+1>T02:00:00+00:00` (processes D = {data['date']}, "
        f"{data['rows']:,} raw rows) vs `dbt build --vars '{{run_date: D}}'`, same data and warehouse state.",
        "",
    ]
    rows = [
        ["airflow dags test (process)", _s(af["wall_s"]), _s(af["cpu_s"]), _mb(af["peak_tree_rss_mb"])],
        ["  of which the DAG run (first task start to last task end)", _s(af["dag_run_s"]), "", ""],
        ["  of which `dags test`'s in-process API start-up (once per process)", _s(af.get("api_warmup_s")), "", ""],
        ["dbt build", _s(dbt["wall_s"]), _s(dbt["cpu_s"]), _mb(dbt["peak_tree_rss_mb"])],
        ["ratio (process)", f"{_s(data['ratios']['airflow_over_dbt_wall'])}x",
         f"{_s(data['ratios']['airflow_over_dbt_cpu'])}x", ""],
    ]  # fmt: skip
    net = data["ratios"].get("dag_run_net_over_dbt_wall")
    if net is not None:
        rows.append(["ratio (the DAG run less the API start-up: the target's measure)", f"{_s(net)}x", "", ""])
    lines += _table(["", "wall s", "CPU s", "peak tree RSS MB"], rows)
    lines += [
        "The target compares the DAG run: its tasks, from the first start to the last end, less the start-up of "
        "the execution API that `dags test` builds in-process on its first task (a scheduled run's tasks talk to "
        "the running API server). The `airflow dags test` CLI's own start (imports, DAG parse, run creation) is "
        "not part of a DAG run either; the whole process's ratio is shown above for completeness.",
        "",
    ]
    sensors = (
        f"; {int(totals['dbt_sensor_tasks'])} Cosmos sensor tasks (no dbt process) {_s(totals['dbt_sensor_s'], 1)} s"
        if totals.get("dbt_sensor_tasks")
        else ""
    )
    lines += [
        f"Per task (median s). The {int(totals['dbt_tasks'])} Cosmos task(s) running dbt spend "
        f"{_s(totals['dbt_execute_s'], 1)} s executing dbt nodes, and {_s(totals['dbt_startup_s'], 1)} s "
        f"starting dbt (imports), {_s(totals['dbt_parse_s'], 1)} s parsing (a full parse: new --vars), "
        f"{_s(totals['dbt_exit_s'], 1)} s in dbt's exit, {_s(totals['pre_s'] + totals['post_s'], 1)} s in "
        f"Airflow/Cosmos around dbt{sensors}; other tasks {_s(totals['other_tasks_s'], 1)} s.",
        "",
    ]
    keys = ["total_s", "pre_s", "dbt_startup_s", "dbt_parse_s", "dbt_execute_s", "dbt_exit_s", "post_s"]
    rows = [[f"`{t['task_id']}`", *[_s(t.get(k)) for k in keys]] for t in af["tasks"]]
    lines += _table(["task", "total", "pre", "dbt start-up", "dbt parse", "dbt execute", "dbt exit", "post"], rows)
    if backfill:
        lines += [
            f"Real scheduler (`make airflow`, `make backfill`), {backfill['dates'][0]} .. {backfill['dates'][1]}, "
            f"{backfill['rows_per_day']:,} rows a day: backfill {_s(backfill['backfill_s'], 1)} s (Airflow start "
            f"{_s(backfill['airflow_start_s'], 1)} s, not included) vs plain dbt one date at a time "
            f"{_s(backfill['dbt_per_date_total_s'], 1)} s ({_s(backfill['backfill_over_dbt_per_date'])}x) and "
            f"one ranged dbt build {_s(backfill['dbt_ranged_s'], 1)} s ({_s(backfill['backfill_over_dbt_ranged'])}x); "
            "peak RSS summed over the Airflow processes and their tasks "
            f"{_mb(backfill['backfill_peak_tree_rss_mb'])} MB (shared pages counted in every process).",
            "",
        ]
    else:
        lines += ["Real-scheduler backfill: not run (`BENCH_BACKFILL=1 make bench`).", ""]
    return lines


def generator_section(data: dict[str, Any]) -> list[str]:
    lines = [
        f"## 5. Generator throughput ({data['rows']:,} rows, one day)",
        "",
        "`ecompipe.pipeline.generator.generate_partition` vs DuckDB generating an equivalent table in SQL (same "
        "columns, formats, dirt and duplicate layout, quoted strings: same file size) and `COPY`-ing "
        "it to CSV; and DuckDB's `COPY` alone of rows already in memory (the floor of writing).",
        "",
    ]
    rows = []
    for name, label in (("ecompipe", "ecompipe generator"), ("duckdb", "DuckDB SQL + COPY"),
                        ("duckdb-write", "DuckDB COPY only")):  # fmt: skip
        item = data[name]
        rows.append(
            [label, _s(item["seconds"]), f"{item['rows_per_s']:,.0f}", _s(item["wall_s"]), _mb(item["max_rss_mb"])]
        )
    lines += _table(["", "seconds", "rows/s", "process wall s", "max RSS MB"], rows)
    ours = data["ecompipe"]
    lines += [
        f"ecompipe's time: build the table {_s(ours['build_s'])} s, write the CSV {_s(ours['write_s'])} s "
        f"(a second call in the same process). Throughput vs DuckDB: "
        f"{_s(data['ratios']['throughput_vs_duckdb'])}x.",
        "",
    ]
    return lines


def memory_section(results: dict[str, Any]) -> list[str]:
    sections = results["sections"]
    rows: list[list[str]] = []

    def add(label: str, item: dict[str, Any] | None) -> None:
        if item:
            rows.append([label, _mb(item.get("peak_tree_rss_mb")), _mb(item.get("max_rss_mb"))])

    for key, item in (sections.get("one_day") or {}).get("by_rows", {}).items():
        for name in ("dbt", "bare_duckdb", "pandas"):
            add(f"one day {int(key):,} rows: {name}", item[name])
    incremental = sections.get("incremental")
    if incremental:
        add("incremental: history load (one ranged build)", incremental["history_load"])
        add("incremental: day 1", incremental["day1"])
        add(f"incremental: day {incremental['history_days'] + 1}", incremental["dayN"])
    if sections.get("dag_parse"):
        add("DAG parse of dags/", sections["dag_parse"]["dags"])
        add("DAG parse of an empty DAG", sections["dag_parse"]["empty"])
    if sections.get("airflow"):
        add("airflow dags test (process tree)", sections["airflow"]["airflow_dags_test"])
        add("dbt build (same date)", sections["airflow"]["dbt_build"])
    if sections.get("generator"):
        for name in ("ecompipe", "duckdb", "duckdb-write"):
            add(f"generator: {name}", sections["generator"][name])
    return [
        "## 6. Peak memory",
        "",
        "Peak RSS summed over the process tree (psutil, every 50 ms; counts shared pages once per process) and "
        "the largest single process (`ru_maxrss` from `wait4`), max over the runs, MB.",
        "",
        *_table(["measurement", "peak tree RSS", "largest process"], rows),
    ]


def experiments_section(experiments: dict[str, Any]) -> list[str]:
    """Before/after of the what-ifs (benchmarks/experiments.py), from results/experiments.json."""
    lines = [
        "## What would fix the misses: measured before/after on copies",
        "",
        f"From `experiments.md` ({experiments.get('generated_at')}; `make bench-experiments`). Each variant "
        "ran alternately with its baseline, same data and warehouse state; ratios < 1 are faster.",
        "",
    ]
    rows = []
    for name, data in experiments.get("experiments", {}).items():
        for variant, item in (data.get("variants") or {}).items():
            rows.append(
                [
                    name,
                    f"`{variant}`",
                    _s(item["wall_s"]),
                    f"{_s(item['vs_baseline_wall'])}x",
                    f"{_s(item['vs_baseline_cpu'])}x",
                    "yes"
                    if item["same_output_as_baseline"]
                    else "no" + (" (a task failed)" if item.get("failed_tasks") else ""),
                ]
            )
    lines += _table(["experiment", "variant", "wall s", "wall vs baseline", "CPU vs baseline", "same output"], rows)
    lines += ["The changes worth making, as diffs against the current files: `benchmarks/recommended/*.diff`.", ""]
    return lines


def render(results: dict[str, Any], targets: list[Target], experiments: dict[str, Any] | None = None) -> str:
    sections = results["sections"]
    lines = header(results) + targets_section(targets)
    renderers = (
        ("one_day", one_day_section),
        ("incremental", incremental_section),
        ("dag_parse", dag_parse_section),
        ("airflow", airflow_section),
        ("generator", generator_section),
    )
    for key, renderer in renderers:
        if key == "airflow" and sections.get(key):
            lines += airflow_section(sections[key], sections.get("backfill"))
        elif sections.get(key):
            lines += renderer(sections[key])
        else:
            lines += [f"## {key}: not run", ""]
    lines += memory_section(results)
    if results.get("errors"):
        lines += ["## Errors", "", *[f"- {error}" for error in results["errors"]], ""]
    if experiments:
        lines += experiments_section(experiments)
    else:
        lines += ["Experiments (what would fix the misses): run `make bench-experiments`.", ""]
    return "\n".join(lines)
