"""``ecompipe-dbt``: dbt for the cluster profile, where builds of different dates run at the same time.

Used in place of ``dbt`` on the cluster profile (the DAG's Cosmos ``dbt_executable_path``, bulk chunks,
late-data reprocessing); arguments are dbt's. Around the real dbt it adds what DuckLake needs:

* **One build per date at a time.** Two transactions that load the same *new* date into a table both
  commit and the rows are doubled, silently (the scope's delete matched nothing, so DuckLake sees no
  conflict; duckdb/ducklake#1393). So the wrapper holds a PostgreSQL advisory lock per date of the
  scope (sorted, so two ranges never deadlock) for the whole dbt process; a second build of a date
  waits for the first, then replaces its rows. A full refresh takes every date (an exclusive lock that
  date builds share). A killed build's locks go with its database session.
* **Conflicts retried.** DuckLake detects conflicts per table, not per date: a model that deletes its
  dates while another date's build inserted into the same table fails at COMMIT ("Transaction
  conflict"), and two builds replacing one store_failures table collide ("already exists"). The
  transaction rolled back and every model is idempotent per date, so what failed or was skipped runs
  again (``dbt retry``, with backoff); each retry is counted in ``$PIPELINE_DATA_DIR/logs/dbt/lake_retries.jsonl``.
* **Rolling windows checked.** ``agg_customer_rolling`` rewrites the 29 days after the scope, which
  other builds own: two builds inserting the same new (customer, day) both commit. After a build
  (successful, or failed: its own rolling-window test may have caught them) the wrapper looks for
  duplicate keys in those days and, if any, builds again (its delete now matches rows, so a
  concurrent writer conflicts instead of doubling).

Output is streamed line by line (Cosmos's WATCHER producer reads dbt's JSON log lines as they come).
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import yaml

from ecompipe.core.dates import date_range, parse_date
from ecompipe.settings import RUN_DATE_ENV, dbt_run_executable

# What a concurrent writer of the same table looks like: a commit conflict, (two builds replacing one
# store_failures table, both dropping then creating it) the second create finding the first one's table,
# or DuckLake's own commit retries (snapshot ids taken by other commits) used up under heavy contention.
CONFLICT = re.compile(
    r"Transaction conflict|write-write conflict|Catalog Error: .* already exists|Exceeded the maximum retry count",
    re.IGNORECASE,
)
# Two processes attaching a brand-new catalog at once race to create its tables (`cluster up` creates
# them first; a lake set up by hand may not have them): the loser failed before any node ran.
FRESH_CATALOG_RACE = re.compile(r"Failed to initialize DuckLake")
HOOK_FAILED = re.compile(r"ERROR hook|on-run-(start|end) failed", re.IGNORECASE)
WRITING_COMMANDS = {"build", "run", "test", "seed", "snapshot", "retry"}
MAX_ATTEMPTS = 6
# What this wrapper prints before running dbt again: a reader of its output keeps the last attempt's lines.
RETRY_MARK = "[ecompipe-dbt] DuckLake"
ROLLING_WINDOW_DAYS = 30
DATA_TESTS_REASON = "data tests failed while other builds may have been committing"
MAX_LOCKED_DATES = 400  # longer scopes lock everything: one exclusive key instead of thousands


def _real_dbt() -> str:
    return str(dbt_run_executable())


def dbt_command(argv: Sequence[str]) -> str:
    """dbt's sub-command (build, run, ...): its first argument that is not an option."""
    return next((arg for arg in argv if not arg.startswith("-")), "")


def scope_of(argv: Sequence[str], env: Mapping[str, str] | None = None) -> tuple[str, list[str]]:
    """("none" | "dates" | "all", dates) for a dbt command line and its environment (``os.environ``
    when None; Airflow hands the date over as PIPELINE_RUN_DATE): which dates it writes."""
    if dbt_command(argv) not in WRITING_COMMANDS:
        return "none", []
    if "--full-refresh" in argv:
        return "all", []
    variables: dict[str, object] = {}
    for index, arg in enumerate(argv):
        text = argv[index + 1] if arg == "--vars" and index + 1 < len(argv) else None
        text = arg.split("=", 1)[1] if arg.startswith("--vars=") else text
        if text:
            loaded = yaml.safe_load(text)
            variables.update(loaded if isinstance(loaded, dict) else {})
    if variables.get("run_date"):
        return "dates", [parse_date(str(variables["run_date"]), "run_date").isoformat()]
    if variables.get("start_date") and variables.get("end_date"):
        days = [day.isoformat() for day in date_range(str(variables["start_date"]), str(variables["end_date"]))]
        return ("all", []) if len(days) > MAX_LOCKED_DATES else ("dates", days)
    env_date = (os.environ if env is None else env).get(RUN_DATE_ENV)
    if env_date:  # the same order as dbt's run_scope macro: date vars first, then the environment
        return "dates", [parse_date(env_date, RUN_DATE_ENV).isoformat()]
    return "all", []  # no scope: dbt refuses it, or it is a full build; lock everything to be safe


def _run_streaming(command: list[str]) -> tuple[int, str]:
    """Run dbt, copying its output to ours line by line; returns (exit code, output)."""
    kept: list[str] = []
    from ecompipe.settings import pipeline_env

    env = {**os.environ, **pipeline_env()}  # what the `cluster` target reads: the lake's coordinates
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1, env=env
    ) as child:
        assert child.stdout is not None
        for line in child.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            kept.append(line)
        code = child.wait()
    return code, "".join(kept)


def _record_retry(scope: list[str], attempt: int, reason: str) -> None:
    from ecompipe.settings import logs_dir

    path = logs_dir() / "dbt" / "lake_retries.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = {"at": datetime.now(UTC).isoformat(), "scope": scope[:1] + scope[-1:], "attempt": attempt, "reason": reason}
    with path.open("a") as out:  # one short line per write: appends of concurrent writers do not interleave
        out.write(json.dumps(entry) + "\n")


def rolling_duplicates(dates: list[str]) -> int:
    """Duplicate (customer_id, transaction_date) keys of agg_customer_rolling in the days a build of
    ``dates`` rewrote (the scope and the 29 days after it)."""
    from ecompipe.core import lake

    first = parse_date(dates[0], "start").isoformat()
    last = (date.fromisoformat(dates[-1]) + timedelta(days=ROLLING_WINDOW_DAYS - 1)).isoformat()
    with lake.connect(read_only=True) as con:
        known = con.execute("select count(*) from information_schema.tables where table_name = 'agg_customer_rolling'")
        if not known.fetchone()[0]:
            return 0
        query = (
            "select count(*) from (select customer_id, transaction_date from agg_customer_rolling "
            "where transaction_date between ? and ? group by all having count(*) > 1)"
        )
        return int(con.execute(query, [first, last]).fetchone()[0])


def failed_data_tests(output_lines: Iterable[str]) -> list[str]:
    """The data tests a failed dbt build reported as failing, if nothing else went wrong in it.

    Reads dbt's JSON log (the ``node_info`` of its result events, ``LogTestResult``, ``LogModelResult``,
    ...): returns the unique ids of the tests whose status is ``fail`` when no node ended in ``error``;
    returns [] when any node errored (a SQL error, a conflict, a lock) or no test failed, i.e. when
    building again could succeed."""
    lines = list(output_lines)
    marks = [index for index, line in enumerate(lines) if RETRY_MARK in line]
    failed: list[str] = []
    for line in lines[marks[-1] + 1 if marks else 0 :]:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        node = event.get("data", {}).get("node_info", {}) if isinstance(event, dict) else {}
        if node.get("node_status") == "error":
            return []
        if node.get("node_status") == "fail" and node.get("resource_type") == "test":
            failed.append(str(node.get("unique_id")))
    return list(dict.fromkeys(failed))


def _say(message: str) -> None:
    print(f"[ecompipe-dbt] {message}", flush=True)


# The options `dbt retry` takes over from the failed command (it reads the rest, the selection and the
# vars included, from that command's run_results.json).
RETRY_OPTIONS = {"--project-dir", "--profiles-dir", "--profile", "--target", "-t", "--target-path", "--log-path"}
RETRY_OPTIONS |= {"--log-format", "--vars"}


def retry_command(argv: Sequence[str]) -> list[str]:
    """``dbt retry`` with the failed command's location options: reruns only what failed or was skipped."""
    kept = ["retry"]
    for index, arg in enumerate(argv):
        name = arg.split("=", 1)[0]
        if name in RETRY_OPTIONS:
            kept += [arg] if "=" in arg or index + 1 >= len(argv) else [arg, argv[index + 1]]
    return kept


def retry_reason(
    code: int,
    output: str,
    argv: list[str],
    dates: list[str],
    doubled: Callable[[list[str]], int],
    tests_rebuilt: bool = False,
) -> tuple[str, list[str]]:
    """Why a finished dbt run must run again ("" if it must not), and the command to run.

    Doubled rolling-window rows (``doubled``: ``rolling_duplicates``) are looked for after a build
    that succeeded *or failed*: the build's own test of the rolling window may be what caught them.
    A build that failed only data tests runs once more, whichever attempt it was (``tests_rebuilt``:
    that rebuild is spent): builds of other dates committing meanwhile can make a cross-date test fail
    once, also on the `dbt retry` after a conflict; bad data fails it again (and is not retried by
    Airflow either, see ecompipe.airflow.watcher_tries)."""
    if code != 0 and FRESH_CATALOG_RACE.search(output):
        return "catalog being created by another process", list(argv)
    if code != 0 and CONFLICT.search(output):
        # A failed hook is no node `dbt retry` would rerun: then the whole command.
        return "transaction conflict", list(argv) if HOOK_FAILED.search(output) else retry_command(argv)
    if dates and dbt_command(argv) in {"build", "run"} and doubled(dates):
        return "rolling window rows doubled by a concurrent build", list(argv)
    if code != 0 and not tests_rebuilt and failed_data_tests(output.splitlines()):
        return DATA_TESTS_REASON, list(argv)
    return "", list(argv)


@dataclass
class RetryPolicy:
    """What to run after each attempt of one build: ``retry_reason`` plus what earlier attempts spent."""

    argv: list[str]
    dates: list[str]
    doubled: Callable[[list[str]], int] = rolling_duplicates
    tests_rebuilt: bool = False

    def after(self, code: int, output: str) -> tuple[str, list[str]]:
        reason, command = retry_reason(code, output, self.argv, self.dates, self.doubled, self.tests_rebuilt)
        self.tests_rebuilt = self.tests_rebuilt or reason == DATA_TESTS_REASON
        return reason, command


def build_with_retries(argv: list[str], dates: list[str]) -> int:
    """Run dbt until it succeeds without a conflict (or fails otherwise, or attempts run out).

    After a conflict only what failed or was skipped runs again (`dbt retry`); after doubled rolling
    rows, or when the conflict hit an on-run-end hook (`dbt retry` has no node to rerun then), the
    whole command."""
    policy = RetryPolicy(list(argv), dates)
    command = list(argv)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        code, output = _run_streaming([_real_dbt(), *command])
        reason, command = policy.after(code, output)
        if not reason:
            return code
        if attempt == MAX_ATTEMPTS:
            _say(f"giving up after {attempt} attempts: {reason}")
            return code or 1
        _record_retry(dates, attempt, reason)
        pause = min(2 ** (attempt - 1), 16) * (0.5 + random.random())  # jitter: concurrent builds spread out
        _say(f"DuckLake {reason}: `dbt {command[0]}` again in {pause:.1f} s (attempt {attempt + 1})")
        time.sleep(pause)
    return 1


def main(argv: list[str] | None = None) -> int:
    from ecompipe.core import lake
    from ecompipe.settings import get_settings

    args = list(sys.argv[1:] if argv is None else argv)
    kind, dates = scope_of(args)
    if kind == "none" or get_settings().pipeline_profile != "cluster":
        return subprocess.call([_real_dbt(), *args])
    exclusive = lake.date_lock_keys(dates) if kind == "dates" else [(lake.DATE_LOCK_NAMESPACE, lake.ALL_DATES_KEY)]
    shared = [(lake.DATE_LOCK_NAMESPACE, lake.ALL_DATES_KEY)] if kind == "dates" else []
    described = f"{dates[0]}..{dates[-1]}" if dates else "every date"

    def waiting(key: tuple[int, int]) -> None:
        _say(f"another build holds {described if key[1] == lake.ALL_DATES_KEY else key[1]}: waiting for it")

    with lake.advisory_locks(exclusive, shared, on_wait=waiting):
        _say(f"holding the build lock of {described}")
        return build_with_retries(args, dates)


if __name__ == "__main__":
    raise SystemExit(main())
