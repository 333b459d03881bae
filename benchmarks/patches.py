"""Changes tried on COPIES of the dbt project and of the DAG (benchmarks/experiments.py measures them).

Each patch edits text in a copy and fails loudly (PatchDoesNotApply) when the text it expects has
changed, so an experiment never silently measures the unpatched code.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from benchmarks.common import DBT_PROJECT_DIR, REPO_ROOT

RUN_DATE_ENV = "PIPELINE_RUN_DATE"


class PatchDoesNotApplyError(RuntimeError):
    """The file no longer contains the text a patch replaces."""


def replace_in(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    if old not in text:
        raise PatchDoesNotApplyError(f"{path.name}: expected text not found: {old[:120]!r}")
    path.write_text(text.replace(old, new, 1))


def copy_project(target: Path, patch: Callable[[Path], None] | None = None) -> Path:
    """A copy of dbt_project/ (without target/ and logs/), patched."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(DBT_PROJECT_DIR, target, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    if patch:
        patch(target)
    return target


def copy_dags(target: Path, patch: Callable[[Path], None] | None = None) -> Path:
    """A copy of dags/ holding only the main DAG file, patched."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    shutil.copyfile(REPO_ROOT / "dags" / "end_to_end_data_pipeline.py", target / "end_to_end_data_pipeline.py")
    if patch:
        patch(target / "end_to_end_data_pipeline.py")
    return target


# --------------------------------------------------------------------------------------------------
# dbt project patches


def project_run_date_from_env(project: Path) -> None:
    """The run date may come from $PIPELINE_RUN_DATE instead of --vars (vars still win).

    dbt re-parses only the files whose env_var() values changed, instead of everything when --vars
    change; the Python export model reads the variable itself (it cannot call macros).
    """
    replace_in(
        project / "macros" / "run_scope.sql",
        "{%- set run_date = var('run_date', none) -%}",
        "{%- set run_date = var('run_date', env_var('" + RUN_DATE_ENV + "', '') or none) -%}",
    )
    model = project / "models" / "exports" / "export_daily_parquet.py"
    replace_in(model, "import datetime\n", "import datetime\nimport os\n")
    replace_in(
        model,
        '    start, end = dbt.config.get("scope_start_date"), dbt.config.get("scope_end_date")\n',
        '    start, end = dbt.config.get("scope_start_date"), dbt.config.get("scope_end_date")\n'
        f'    if not (start and end) and os.environ.get("{RUN_DATE_ENV}"):\n'
        f'        start = end = os.environ["{RUN_DATE_ENV}"]\n',
    )


DIRECT_INCREMENTAL = """
{#- Benchmark experiment: an incremental materialization that inserts the model's query straight into
    the table, instead of dbt-duckdb's temp table + insert (every row is written once, not twice). -#}
{% materialization incremental_direct, adapter='duckdb' %}
  {%- set target_relation = this.incorporate(type='table') -%}
  {%- set existing_relation = load_cached_relation(this) -%}
  {{ run_hooks(pre_hooks, inside_transaction=False) }}
  {{ run_hooks(pre_hooks, inside_transaction=True) }}
  {%- if existing_relation is none or should_full_refresh() -%}
    {%- set build_sql = create_table_as(False, target_relation, sql) -%}
  {%- else -%}
    {%- set columns = adapter.get_columns_in_relation(existing_relation) | map(attribute='quoted') | join(', ') -%}
    {%- set build_sql -%}
      insert into {{ target_relation }} ({{ columns }}) select {{ columns }} from ({{ sql }})
    {%- endset -%}
  {%- endif -%}
  {% call statement('main') %}{{ build_sql }}{% endcall %}
  {{ run_hooks(post_hooks, inside_transaction=True) }}
  {% do adapter.commit() %}
  {{ run_hooks(post_hooks, inside_transaction=False) }}
  {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}

{% macro is_incremental() %}
  {#- dbt's own, also true for incremental_direct. -#}
  {% if not execute %}
    {{ return(False) }}
  {% else %}
    {% set relation = adapter.get_relation(this.database, this.schema, this.table) %}
    {{ return(relation is not none and relation.type == 'table'
              and model.config.materialized in ('incremental', 'incremental_direct')
              and not should_full_refresh()) }}
  {% endif %}
{% endmacro %}
"""


def project_direct_insert(project: Path) -> None:
    """SQL incremental models insert their query directly (no temp table)."""
    (project / "macros" / "bench_direct_incremental.sql").write_text(DIRECT_INCREMENTAL)
    text = (project / "dbt_project.yml").read_text()
    if "+materialized: incremental\n" not in text:
        raise PatchDoesNotApplyError("dbt_project.yml: no '+materialized: incremental' to replace")
    (project / "dbt_project.yml").write_text(
        text.replace("+materialized: incremental\n", "+materialized: incremental_direct\n")
    )


TEMP_VIEW_MACRO = Path("macros") / "incremental_temp_view.sql"


def project_before_issue_7(project: Path) -> None:
    """The project as before issue #7's dbt-side changes: dbt-duckdb's own temporary relation, a TABLE
    (every row written twice), and the raw files' lines counted by both staging models, with trim()."""
    macro = project / TEMP_VIEW_MACRO
    if not macro.exists():
        raise PatchDoesNotApplyError(f"{TEMP_VIEW_MACRO}: not in the project, nothing to remove")
    macro.unlink()
    reader = project / "macros" / "read_raw_partitions.sql"
    replace_in(reader, "raw_file_layouts(count_lines=false)", "raw_file_layouts(count_lines=true)")
    replace_in(reader, "where not regexp_full_match(line, '[\\\\r ]*')", "where trim(line, chr(13) || ' ') <> ''")


def project_features_view(project: Path) -> None:
    """fct_transaction_features becomes a view (the join of fct_transactions and agg_customer_daily),
    so the warehouse stores the day's clean rows once instead of twice; the export reads the view."""
    replace_in(
        project / "models" / "marts" / "fct_transaction_features.sql",
        "config(\n",
        "config(\n    materialized = 'view',\n",
    )


def project_direct_insert_and_features_view(project: Path) -> None:
    project_direct_insert(project)
    project_features_view(project)


# --------------------------------------------------------------------------------------------------
# DAG patches


def _project_from_env(dag_file: Path) -> None:
    """Point the DAG copy at the project copy named by $BENCH_DBT_PROJECT_DIR."""
    replace_in(
        dag_file,
        "from ecompipe.settings import DBT_PROJECT_DIR, pipeline_env\n",
        "from ecompipe.settings import DBT_PROJECT_DIR, pipeline_env\n\n"
        'DBT_PROJECT_DIR = Path(os.environ.get("BENCH_DBT_PROJECT_DIR", str(DBT_PROJECT_DIR)))\n',
    )


def dag_run_date_env(dag_file: Path) -> None:
    """Cosmos tasks get the run date as $PIPELINE_RUN_DATE instead of --vars.

    (Cosmos refuses operator_args "env" next to ProjectConfig.env_vars; the latter is templated too.)
    """
    _project_from_env(dag_file)
    replace_in(dag_file, '            "vars": {"run_date": RUN_DATE},\n', "")
    replace_in(dag_file, "env_vars=pipeline_env(),", f'env_vars={{**pipeline_env(), "{RUN_DATE_ENV}": RUN_DATE}},')


SENSOR_ARGS = '            "deferrable": False,\n            "mode": "reschedule",\n            "poke_interval": 5,\n'


def dag_local_per_model(dag_file: Path) -> None:
    """The DAG before WATCHER: Cosmos LOCAL, TestBehavior.BUILD, a `dbt build` subprocess per model."""
    replace_in(dag_file, "execution_mode=ExecutionMode.WATCHER", "execution_mode=ExecutionMode.LOCAL")
    replace_in(dag_file, "test_behavior=TestBehavior.AFTER_EACH", "test_behavior=TestBehavior.BUILD")
    replace_in(dag_file, SENSOR_ARGS, "")


def dag_dbt_runner(dag_file: Path) -> None:
    """Cosmos invokes dbt in the task's process (dbtRunner) instead of a subprocess."""
    replace_in(dag_file, "invocation_mode=InvocationMode.SUBPROCESS", "invocation_mode=InvocationMode.DBT_RUNNER")


SINGLE_BUILD = '''

def _single_dbt_build(group_id, project_config, profile_config, execution_config, render_config, operator_args):
    """Benchmark experiment: the whole dbt graph as ONE task running `dbt build` (same settings)."""
    from cosmos.operators.local import DbtBuildLocalOperator

    return DbtBuildLocalOperator(
        task_id=f"{group_id}_build",
        project_dir=str(project_config.dbt_project_path),
        profile_config=profile_config,
        dbt_executable_path=str(execution_config.dbt_executable_path),
        invocation_mode=execution_config.invocation_mode,
        install_deps=False,
        env=dict(project_config.env_vars or {}),
        **{k: v for k, v in operator_args.items() if k not in ("deferrable", "mode", "poke_interval")},
    )


DbtTaskGroup = _single_dbt_build  # noqa: F811
'''


def dag_single_build(dag_file: Path) -> None:
    """One task runs `dbt build` for the date instead of one task per model."""
    marker = "from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior\n"
    replace_in(dag_file, marker, marker + SINGLE_BUILD)
