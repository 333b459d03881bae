{#- Incremental SQL models: dbt-duckdb stages the new rows in a temporary TABLE, then inserts them into
    the model's table, so every row is written twice. As a temporary VIEW, the insert computes the
    query directly; everything else (pre/post-hooks, on_schema_change, first run, full refresh) stays
    dbt-duckdb's own. Measured in benchmarks/results (README, Performance).
    The view is evaluated by the insert, after the pre-hook's delete of the scope's dates: a model
    must not read its own table (none does; `{{ this }}` in a model's SQL would break this). -#}
{% macro duckdb__create_table_as(
    temporary, relation, compiled_code, language='sql', partitioned_by=none, sorted_by=none
) -%}
  {%- if temporary and language == 'sql' and model.config.materialized == 'incremental' -%}
    create temporary view {{ relation.include(database=false, schema=false) }} as (
      {{ compiled_code }}
    )
  {%- else -%}
    {{ dbt.duckdb__create_table_as(temporary, relation, compiled_code, language, partitioned_by, sorted_by) }}
  {%- endif -%}
{%- endmacro %}
