"""3. DAG parse time: `dags/` vs a folder holding one empty DAG, each parse in a fresh process."""

from __future__ import annotations

from pathlib import Path

from benchmarks import measure, verify
from benchmarks.common import BENCH_DIR, PYTHON, REPO_ROOT, Config, base_env, fresh_dir

PROBE = BENCH_DIR / "dag_parse_probe.py"
EMPTY_DAG = '''"""An empty DAG: the parse-time floor of any DAG file."""

from datetime import datetime

from airflow.sdk import DAG

with DAG(dag_id="empty_dag", schedule=None, start_date=datetime(2024, 1, 1)):
    pass
'''


def _env(airflow_home: Path, folder: Path) -> dict[str, str]:
    env = base_env()
    env.update(
        {
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        }
    )
    return env


def _probe(airflow_home: Path, folder: Path, log: Path) -> measure.Sample:
    sample = measure.run([PYTHON, str(PROBE), str(folder)], log_path=log, env=_env(airflow_home, folder))
    sample.extra = verify.last_json_line(log)
    return sample


def _summary(samples: list[measure.Sample]) -> dict[str, object]:
    result = measure.summarize(samples)
    last = samples[-1].extra
    result.update(
        {
            "parse_s": measure.median(float(s.extra["parse_s"]) for s in samples),  # type: ignore[arg-type]
            "import_airflow_s": measure.median(float(s.extra["import_s"]) for s in samples),  # type: ignore[arg-type]
            "dag_ids": last["dag_ids"],
            "tasks": last["tasks"],
            "import_errors": last["import_errors"],
            "subprocess_calls": sorted({call for s in samples for call in s.extra["subprocess_calls"]}),  # type: ignore[attr-defined]
        }
    )
    return result


def run(cfg: Config) -> dict[str, object]:
    root = fresh_dir(cfg.work_dir / "dag_parse")
    empty_folder = root / "empty_dags"
    empty_folder.mkdir()
    (empty_folder / "empty_dag.py").write_text(EMPTY_DAG)
    folders = {"dags": REPO_ROOT / "dags", "empty": empty_folder}
    home = root / "airflow_home"
    _probe(home, empty_folder, root / "warmup.log")  # writes airflow.cfg once; warms the page cache
    samples: dict[str, list[measure.Sample]] = {name: [] for name in folders}
    for rep in range(cfg.reps):
        for name, folder in folders.items():
            samples[name].append(_probe(home, folder, root / f"{name}-{rep}.log"))
    result = {name: _summary(items) for name, items in samples.items()}
    result["overhead_over_empty_s"] = result["dags"]["parse_s"] - result["empty"]["parse_s"]  # type: ignore[operator]
    return result
