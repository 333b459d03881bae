"""results/latest.json -> results/latest.md: the targets, then one table per benchmark, ratios side by side."""

from __future__ import annotations

from typing import Any

from benchmarks.cluster import projection


def _get(data: Any, *path: str) -> Any:
    for key in path:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _n(value: Any, digits: int = 2) -> str:
    return "n/a" if value is None else f"{float(value):,.{digits}f}"


def _ratio(a: Any, b: Any) -> float | None:
    return None if a is None or not b else float(a) / float(b)


def _x(a: Any, b: Any) -> str:
    value = _ratio(a, b)
    return "n/a" if value is None else f"{value:.2f}x"


def _wc(item: dict[str, Any] | None, digits: int = 2) -> str:
    """Wall seconds (CPU seconds)."""
    return "n/a" if not item else f"{_n(item.get('wall_s'), digits)} ({_n(item.get('cpu_s'), digits)})"


def _largest(one_day: dict[str, Any] | None) -> tuple[int, dict[str, Any]]:
    sizes = _get(one_day, "sizes") or {}
    return max(((int(rows), item) for rows, item in sizes.items()), default=(0, {}), key=lambda pair: pair[0])


def targets(sections: dict[str, Any]) -> list[tuple[str, str, float | None, str, bool | None]]:
    """(measure, goal, value, unit, passed): the issue's targets, n/a where not measured."""
    inc, parse, af = sections.get("incremental"), _get(sections, "dag_parse", "dags"), sections.get("airflow")
    calls, gen, year = _get(parse, "subprocess_calls"), sections.get("generator"), sections.get("year") or {}
    net = None if not af else af["dags_test"]["dag_run_s"] - af["dags_test"]["api_warmup_s"]
    bulk = min((item["wall_s"] for item in (year.get("bulk") or {}).values()), default=None)
    full_year = bool(bulk and year["days"] == 365 and year["rows_per_day"] >= 100_000)
    year_min = bulk / 60 if full_year else None
    year_bare = _ratio(bulk, _get(year, "bare", "wall_s")) if full_year else None
    flat = _ratio(_get(inc, "dayN", "wall_s"), _get(inc, "day1", "wall_s"))
    airflow_dbt = _ratio(net, _get(af, "dbt_build", "wall_s"))
    generator = _ratio(_get(gen, "ecompipe", "rows_per_s"), _get(gen, "duckdb", "rows_per_s"))
    bf = sections.get("backfill")
    plain, dates = _get(bf, "dbt_per_date", "wall_s"), _get(bf, "airflow", "days")
    per_date = _ratio(_get(bf, "airflow", "per_date_s"), plain / dates if plain and dates else None)
    found = [  # what, at most (+) or at least (-), goal, unit, value
        *_day_targets(sections.get("one_day")),
        (f"day N + 1 on N = {_get(inc, 'history_days') or '?'} days of history / day 1", +1, 1.2, "x", flat),
        ("DagBag parse of dags/", +1, 2, " s", _get(parse, "parse_s")),
        ("subprocesses started while parsing dags/", +1, 0, "", None if calls is None else len(calls)),
        ("Airflow DAG run (its tasks, less dags test's API start-up) / plain dbt build", +1, 2, "x", airflow_dbt),
        ("a date through the real scheduler (backfill, per extra date) / its plain dbt build", +1, 1.3, "x", per_date),
        ("generator throughput / DuckDB generate + COPY", -1, 0.5, "x", generator),
        ("a year (365 days x 100,000 rows) through the bulk DAG, start to stop", +1, 15, " min", year_min),
        ("a year (365 days x 100,000 rows): the bulk DAG, start to stop / bare DuckDB", +1, 1.5, "x", year_bare),
    ]
    return [
        (
            what,
            f"{'<=' if sign > 0 else '>='} {goal}{unit}",
            value,
            unit,
            None if value is None else sign * value <= sign * goal,
        )
        for what, sign, goal, unit, value in found
    ]


def _section(title: str, intro: str, header: str, rows: list[list[str]], *after: str) -> list[str]:
    """``## title``, a paragraph, a table (``header``: the column names separated by " | "), more lines."""
    table = [f"| {header} |", "|" + "---|" * len(header.split(" | ")), *("| " + " | ".join(r) + " |" for r in rows)]
    return [f"## {title}", "", *([intro, ""] if intro else []), *table, "", *after, *([""] if after else [])]


def _slope_sizes(one_day: dict[str, Any] | None) -> tuple[int, dict[str, Any], int, dict[str, Any]] | None:
    """The smallest size of at least 1M rows and the largest: the marginal cost is read between them."""
    sizes = sorted((int(rows), item) for rows, item in (_get(one_day, "sizes") or {}).items())
    big = [pair for pair in sizes if pair[0] >= 1_000_000]
    return (*big[0], *big[-1]) if len(big) >= 2 else None


def _slope(low: dict[str, Any], high: dict[str, Any], name: str, measure: str = "wall_s") -> float | None:
    a, b = _get(low, name, measure), _get(high, name, measure)
    return None if a is None or b is None else float(b) - float(a)


def _day_targets(one_day: dict[str, Any] | None) -> list[tuple[str, int, float, str, float | None]]:
    """Speed at scale, at the largest one-day size: the floor, the slope, pandas, memory."""
    rows, day = _largest(one_day or {"sizes": {"10000000": {}}})
    span = _slope_sizes(one_day)
    slope = None
    label = "1M -> 10M"
    if span:
        low_rows, low, high_rows, high = span
        label = f"{low_rows / 1e6:g}M -> {high_rows / 1e6:g}M"
        slope = _ratio(_slope(low, high, "dbt"), _slope(low, high, "bare_duckdb"))
    return [
        (f"one day at {rows:,} rows: bare DuckDB / the I/O limit", +1, 2, "x",
         _ratio(_get(day, "bare_duckdb", "wall_s"), _get(day, "io_floor", "wall_s"))),
        (f"extra rows, {label} a day: dbt build's wall slope / bare DuckDB's", +1, 1.5, "x", slope),
        (f"one day at {rows:,} rows: dbt build / the lab's pandas (dbt faster below 1)", +1, 1, "x",
         _ratio(_get(day, "dbt", "wall_s"), _get(day, "pandas", "wall_s"))),
        (f"one day at {rows:,} rows: peak memory, dbt build / bare DuckDB", +1, 2, "x",
         _ratio(_get(day, "dbt", "max_rss_mb"), _get(day, "bare_duckdb", "max_rss_mb"))),
    ]  # fmt: skip


def _one_day(data: dict[str, Any]) -> list[str]:
    rows, phases = [], []
    for size, item in data["sizes"].items():
        dbt, bare, pandas = (item[name] for name in ("dbt", "bare_duckdb", "pandas"))
        by_hand, floor = item.get("dbt_vars") or {}, item.get("io_floor") or {}
        memory = " / ".join(_n(x.get("max_rss_mb"), 0) for x in (dbt, bare, pandas, floor))
        same = "yes" if item["same_output"] else "**NO**"
        rows.append([f"{int(size):,}", _wc(dbt), _wc(by_hand), _wc(bare), _wc(pandas), _wc(floor),
                     _x(dbt["wall_s"], bare["wall_s"]), _x(bare["wall_s"], floor.get("wall_s")),
                     _x(dbt["wall_s"], pandas["wall_s"]), memory, same])  # fmt: skip
        names = ("startup_s", "parse_s", "models_s", "tests_s", "exit_s")
        for label, run in ((("the DAG's" if by_hand else "`--vars`"), dbt), ("`--vars`", by_hand)):
            if run:
                phases.append([f"{int(size):,}", label, *(_n(run["phases"].get(p)) for p in names), _n(run["wall_s"])])
    where = _section(
        "Where dbt's time goes (s)",
        "Start-up: to dbt's first log line; parse: to the project's node count (a partial parse when only the "
        "date changed, as the DAG runs dbt; every new `--vars` forces a full one); exit: end of the run to "
        "process exit.",
        "raw rows | build | start-up | parse | models | tests | exit | total",
        phases,
    )
    # Results written before the DAG's way was measured hold one dbt build, a `--vars` one.
    dag_way = all("dbt_vars" in item for item in data["sizes"].values())
    how = (
        "as the DAG runs it (the date in `PIPELINE_RUN_DATE`, dbt's partial-parse file kept from the earlier "
        "build, no unit tests) and by hand (`--vars '{run_date: D}'`, a full parse)"
        if dag_way
        else "by hand (`--vars '{run_date: D}'`, a full parse)"
    )
    intro = (
        f"`dbt build` on a warehouse holding an earlier day (the incremental path), {how} vs "
        "`benchmarks/bare_duckdb.py` (the same rules, the two Parquet files and the rows set aside with their "
        "reasons, no warehouse) vs `benchmarks/lab_pandas.py` vs `benchmarks/io_floor.py` (the I/O limit: the "
        "CSV scanned once, the two files' columns written, nothing else). Wall s (CPU s). The ratios use the "
        "first dbt build. Same output: equal row counts, bare's files equal dbt's row for row, the same rows "
        "set aside for the same reasons."
    )
    return _section(
        f"One day ({data['date']}): dbt build vs bare DuckDB vs the lab's pandas",
        intro,
        "raw rows | dbt build | dbt build --vars | bare DuckDB | pandas | I/O limit | dbt / bare | "
        "bare / I/O limit | dbt / pandas | max RSS MB dbt / bare / pandas / I/O | same output",
        rows,
    ) + ["#" + line if line.startswith("## ") else line for line in where]


def _incremental(data: dict[str, Any]) -> list[str]:
    n, load, day1 = data["history_days"], data["history_load"], data["day1"]
    labels = {"day1": "day 1 (empty warehouse)", "day2": "day 2 (1 day of history)", "dayN": f"day {n + 1}"}
    rows = [[labels[key] + (f" ({n} days of history)" if key == "dayN" else ""), _wc(data[key]),
             _x(data[key]["wall_s"], day1["wall_s"]), _x(data[key]["cpu_s"], day1["cpu_s"]),
             _n(data[key]["max_rss_mb"], 0)] for key in labels]  # fmt: skip
    intro = (
        f"{data['rows_per_day']:,} raw rows a day. The history ({load['rows']:,} rows) was loaded by one ranged "
        f"`dbt build` in {_wc(load, 1)} s, max RSS {_n(load['max_rss_mb'], 0)} MB; warehouse "
        f"{_n(data['warehouse_mb'], 0)} MB."
    )
    header = "run | wall s (CPU s) | wall vs day 1 | CPU vs day 1 | max RSS MB"
    return _section(f"Incremental: day {n + 1} on {n} days of history vs day 1", intro, header, rows)


def _dag_parse(data: dict[str, Any]) -> list[str]:
    rows = []
    for label, item in (("dags/", data["dags"]), ("one empty DAG", data["empty"])):
        counts = (item["tasks"], len(item["subprocess_calls"]), len(item["import_errors"]))
        rows.append([label, _n(item["parse_s"]), _n(item["import_s"]), _wc(item), ", ".join(item["dag_ids"]),
                     *map(str, counts), _n(item["max_rss_mb"], 0)])  # fmt: skip
    return _section(
        "DAG parse",
        "`DagBag(dag_folder=...)` in a fresh process each time (Airflow imported first, as in the dag-processor).",
        "folder | parse s | import Airflow s | process s (CPU s) | DAGs | tasks | subprocesses | import errors | "
        "max RSS MB",
        rows,
    )


def _airflow(data: dict[str, Any]) -> list[str]:
    af, dbt = data["dags_test"], data["dbt_build"]
    net = af["dag_run_s"] - af["api_warmup_s"]
    rows = [
        ["`airflow dags test` (the process)", _wc(af), _x(af["wall_s"], dbt["wall_s"]), _n(af["max_rss_mb"], 0)],
        ["the DAG run: first task start to last task end", _n(af["dag_run_s"]), _x(af["dag_run_s"], dbt["wall_s"]), ""],
        ["the DAG run less `dags test`'s in-process API start-up", _n(net), _x(net, dbt["wall_s"]), ""],
        ["`dbt build` of the same date", _wc(dbt), "1.00x", _n(dbt["max_rss_mb"], 0)],
    ]
    tasks = (
        f"The run's {af['tasks']:.0f} tasks: those of the dbt task group {_n(af['dbt_tasks_s'], 1)} s (one runs "
        f"`dbt build`, the others report its nodes), the others {_n(af['other_tasks_s'], 1)} s."
    )
    title = f"Airflow DAG run vs plain dbt ({data['date']}, {data['rows']:,} raw rows)"
    return _section(title, "", " | wall s (CPU s) | vs dbt build | max RSS MB", rows, tasks)


def _backfill(data: dict[str, Any]) -> list[str]:
    run = data["airflow"]
    rows = [
        ["Airflow: start, backfill, stop (the process tree)", _wc(run), "", _n(run["max_rss_mb"], 0)],
        ["  of which the backfill", f"{_n(run['run_s'])} ({_n(run.get('run_cpu_s'))})", "1.00x", ""],
    ]
    for label, item in (("one date at a time", data["dbt_per_date"]), ("one ranged invocation", data["dbt_ranged"])):
        speed = _x(run["run_s"], item["wall_s"])
        rows.append([f"plain `dbt build`, {label}", _wc(item), speed, _n(item["max_rss_mb"], 0)])
    if run.get("per_date_s"):
        plain = data["dbt_per_date"]["wall_s"] / run["days"]
        rows.append(["per extra date: backfill (run end to run end) / plain `dbt build` of a date",
                     f"{_n(run['per_date_s'])} / {_n(plain)}", _x(run["per_date_s"], plain), ""])  # fmt: skip
    return _section(
        f"Real-scheduler backfill vs plain dbt ({run['days']} dates, {data['rows_per_day']:,} rows a day)",
        f"`ecompipe.local_airflow`: start Airflow, backfill the daily DAG (max {data['max_active_runs']} active "
        f"runs), stop; the start took {_n(run['start_s'], 1)} s.",
        " | wall s (CPU s) | backfill / this | max RSS MB",
        rows,
    )


def _generator(data: dict[str, Any]) -> list[str]:
    rows = []
    for label, item in (("ecompipe generator", data["ecompipe"]), ("DuckDB SQL + COPY", data["duckdb"])):
        speed = _x(item["rows_per_s"], data["duckdb"]["rows_per_s"])
        rows.append([label, _n(item["seconds"]), f"{item['rows_per_s']:,.0f}", _n(item["bytes"] / 2**20, 1),
                     _wc(item), _n(item["max_rss_mb"], 0), speed])  # fmt: skip
    return _section(
        f"Generator throughput ({data['rows']:,} rows, one day)",
        "The project's generator vs DuckDB generating an equivalent day (same columns, formats, dirt, duplicates "
        "and quoting) and writing it with `COPY`.",
        " | seconds | rows/s | MB written | process s (CPU s) | max RSS MB | throughput vs DuckDB",
        rows,
    )


def _year(data: dict[str, Any]) -> list[str]:
    bare, ext = data["bare"], data["perday_extrapolated"]
    bulk = min(data["bulk"].values(), key=lambda item: item["wall_s"])
    contenders = [(f"bulk DAG, chunks of {chunk} days", item) for chunk, item in data["bulk"].items()]
    contenders += [("daily DAG backfill (measured)", data["perday"]),
                   (f"daily DAG backfill, **extrapolated** to {ext['days']} days", ext),
                   ("bare DuckDB, one process over every date", bare)]  # fmt: skip
    rows = []
    for label, item in contenders:
        split = " / ".join(_n(item[k], 0) for k in ("start_s", "run_s", "stop_s")) if "run_s" in item else ""
        ratios = [_x(item["wall_s"], bulk["wall_s"]), _x(item["wall_s"], bare["wall_s"])]
        minutes = _n(item["wall_s"] / 60, 1)
        rows.append([label, str(item["days"]), _wc(item, 0), minutes, split, _n(item.get("max_rss_mb"), 0), *ratios])
    checks = ["Same data:", ""]
    for name, c in data["checks"].items():
        checks.append(f"- {name}: {'yes' if c['equal'] else '**NO**'}")
        if "clean" in c:
            checks[-1] += (
                f" ({c['clean']['rows_reference']:,} clean rows, {c['features']['rows_reference']:,} feature rows)"
            )
    return _section(
        f"A year through the bulk DAG ({data['days']} days from {data['first']}, {data['rows_per_day']:,} rows/day)",
        "Airflow contenders: a real Airflow started in a fresh sandbox, run, stopped; wall and CPU seconds of the "
        "whole process tree. The daily backfill ran the first days only; its extrapolation scales the run, not "
        "the start and stop.",
        "contender | days | wall s (CPU s) | wall min | start / run / stop s | max RSS MB | vs bulk | vs bare",
        rows,
        *checks,
    )


def _cluster(data: dict[str, Any]) -> list[str]:
    variants = {"embedded: LocalExecutor, one-slot pool": data["embedded"]} if data.get("embedded") else {}
    variants |= {f"cluster: {key.split('_')[1]} Celery worker(s), DuckLake": item
                 for key, item in data.items() if key.startswith("cluster_")}  # fmt: skip
    base = _get(data, "embedded", "wall_s")
    rows = [[name, f"{_n(item['wall_s'], 1)} ({_n(item['cpu_s'], 0)})", _x(item["wall_s"], base),
             _n(item["wall_s"] / data["days"], 1), str(item["conflict_retries"])]
            for name, item in variants.items()]  # fmt: skip
    after = [data["note"]] if data.get("note") else []
    bound = projection(data)
    if bound:
        measured = ", ".join(f"{n} worker(s) {_n(v, 0)}" for n, v in bound["dates_per_hour_measured"].items())
        retries = ", ".join(f"{n} worker(s) {_n(v)}" for n, v in bound["retries_per_date"].items())
        ceiling = bound["ceiling_dates_per_hour"]
        after.append(
            f"Projection (the workers here share {data['cores']} cores, so more workers only compete for them; "
            f"measured dates an hour: {measured}). One worker costs {_n(bound['cpu_s_per_date'], 1)} CPU s of "
            f"the machine a date, services included: workers that each bring {data['cores']} cores of their own "
            f"reach at most {ceiling['8']:,} dates an hour with 8 and {ceiling['16']:,} with 16, if nothing "
            f"shared binds. Conflict retries per date, as more builds commit at once: {retries}."
        )
    return _section(
        f"Cluster profile vs embedded ({data['days']} dates, {data['rows_per_day']:,} rows a day)",
        "A backfill of the same dates on each profile, services already up. CPU: the whole machine's busy "
        "seconds meanwhile. Conflict retries: DuckLake commits retried by `ecompipe-dbt`.",
        " | backfill wall s (machine CPU s) | / embedded | s per date | conflict retries",
        rows,
        *after,
    )


def render(results: dict[str, Any]) -> str:
    sections, mach = results["sections"], results["machine"]
    measured = ", ".join(f"{name} {str(item.get('measured_at', '?'))[:16]}" for name, item in sections.items())
    verdicts = {True: "PASS", False: "**MISS**", None: "n/a"}
    goals = [[what, goal, "n/a" if value is None else f"{value:.{2 if unit else 0}f}{unit}", verdicts[passed]]
             for what, goal, value, unit, passed in targets(sections)]  # fmt: skip
    lines = [
        "# Benchmarks: latest results",
        "",
        f"Written {results['generated_at']} by `{results['command']}`. Medians of each measurement's runs "
        f"(`runs` in latest.json); wall s (CPU s, children included); max RSS: the largest process. "
        f"Sections measured (UTC): {measured}.",
        "",
        f"Machine: {mach['cores']} cores ({mach['cpu']}), {mach['memory_gib']} GiB RAM, {mach['platform']}. "
        "Versions: " + ", ".join(f"{name} {version}" for name, version in results["versions"].items()) + ".",
        "",
        *([results["note"], ""] if results.get("note") else []),
        *_section("Targets", "", "measure | target | measured | result", goals),
    ]
    renderers = {"one_day": _one_day, "incremental": _incremental, "dag_parse": _dag_parse, "airflow": _airflow,
                 "backfill": _backfill, "generator": _generator, "year": _year, "cluster": _cluster}  # fmt: skip
    for name, render_section in renderers.items():
        if name in sections:
            lines += render_section(sections[name])
    if results.get("errors"):
        lines += ["## Errors", "", *(f"- {error}" for error in results["errors"]), ""]
    return "\n".join(lines).rstrip() + "\n"
