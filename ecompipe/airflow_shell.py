"""``airflow_home/activate``: the shell environment of this repo's Airflow, for the plain ``airflow`` CLI.

``source airflow_home/activate`` puts the venv on PATH and exports exactly what ``make airflow``
gives its components (AIRFLOW_HOME, the DAGs folder, ports, the data paths, the pipeline settings),
so every ``airflow`` command sees the same Airflow and the same settings as the scheduler.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path

from ecompipe.core.files import write_text_atomically

# What a shell needs of the components' environment: Airflow's settings and the project's.
_PREFIXES = ("AIRFLOW_", "AIRFLOW__", "PIPELINE_", "DUCKDB_", "DBT_")
_NAMES = ("DO_NOT_TRACK", "SCARF_ANALYTICS")


def activate_script(env: Mapping[str, str], venv_bin: Path) -> str:
    """The script's text: export lines for the Airflow and pipeline variables of ``env``."""
    lines = [
        "# Written by `make airflow`: the environment of this repo's Airflow, for the plain `airflow` CLI.",
        "# Use: source airflow_home/activate   (then e.g. `airflow dags list`; see docs/airflow-cli.md)",
        f'export PATH={shlex.quote(str(venv_bin))}:"$PATH"',
        f"export VIRTUAL_ENV={shlex.quote(str(venv_bin.parent))}",
    ]
    for key in sorted(env):
        if key.startswith(_PREFIXES) or key in _NAMES:
            lines.append(f"export {key}={shlex.quote(env[key])}")
    return "\n".join(lines) + "\n"


def write_activate_script(env: Mapping[str, str], venv_bin: Path) -> Path:
    path = Path(env["AIRFLOW_HOME"]) / "activate"
    write_text_atomically(path, activate_script(env, venv_bin))
    path.chmod(0o600)  # it may carry secrets (a database URL, Airflow's keys) given in the environment
    return path
