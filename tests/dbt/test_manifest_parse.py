"""`make manifest` leaves a dbt parse that the DAG's first build reuses (no full parse after an install)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.helpers.sandbox import REPO_ROOT

# What Cosmos adds to every dbt command of the daily DAG (its ProfileConfig, dags/end_to_end_data_pipeline.py).
DAG_PROFILE_ARGS = ["--profile", "ecommerce", "--target", "dev"]


def _install_skeleton(root: Path) -> None:
    """The Makefile, its fragments and the dbt project under ``root``, with this test run's venv as its
    installed .venv (the install stamp newer than the requirements, so make installs nothing)."""
    for name in ("Makefile", "requirements.txt", "requirements-dev.txt", "pyproject.toml"):
        shutil.copy2(REPO_ROOT / name, root / name)
    shutil.copytree(REPO_ROOT / "mk", root / "mk")
    shutil.copytree(REPO_ROOT / "dbt_project", root / "dbt_project", ignore=shutil.ignore_patterns("target", "logs"))
    (root / ".venv" / "bin").mkdir(parents=True)
    for tool in ("dbt", "python"):
        (root / ".venv" / "bin" / tool).symlink_to(Path(sys.executable).parent / tool)
    (root / ".venv" / ".installed").touch()


def test_the_dags_first_build_reuses_the_parse_of_make_manifest(tmp_path: Path) -> None:
    root = tmp_path / "checkout"
    root.mkdir()
    _install_skeleton(root)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PIPELINE_", "DUCKDB_", "LAKE_"))}
    made = subprocess.run(["make", "-s", "manifest"], cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stdout + made.stderr
    assert (root / "dbt_project" / "target" / "partial_parse.msgpack").exists()

    # Cosmos runs dbt in a copy of the project (with its target/), with the paths the install exports.
    copy = tmp_path / "cosmos_copy"
    shutil.copytree(root / "dbt_project", copy)
    data = root / "data"
    run_env = {**env, "PIPELINE_DATA_DIR": str(data), "DUCKDB_PATH": str(data / "warehouse.duckdb")}
    parsed = subprocess.run(
        [str(root / ".venv" / "bin" / "dbt"), "parse", "--project-dir", str(copy),
         "--profiles-dir", str(root / "dbt_project"), *DAG_PROFILE_ARGS],
        env=run_env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert parsed.returncode == 0, parsed.stdout + parsed.stderr
    assert "Unable to do partial parsing" not in parsed.stdout, parsed.stdout
