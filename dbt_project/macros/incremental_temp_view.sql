{#- Incremental SQL models: dbt-duckdb stages the new rows in a temporary TABLE, then inserts them into
    the model's table, so every row is written twice. As a temporary VIEW, the insert computes the
    query directly; everything else (pre/post-hooks, on_schema_change, first run, full refresh) stays
    dbt-duckdb's own. Measured in benchmarks/results (README, Performance).
    The view is evaluated by the insert, after the pre-hook's delete of the scope's dates: a model
    must not read its own table (none does; `{{ this }}` in a model's SQL would break this).
    A model's table (first run, full refresh) gets the compression its config `column_compression`
    names for some columns, where the warehouse is a DuckDB file (see column_compression_ddl). -#}
{% macro duckdb__create_table_as(
    temporary, relation, compiled_code, language='sql', partitioned_by=none, sorted_by=none
) -%}
  {%- if temporary and language == 'sql' and model.config.materialized == 'incremental' -%}
    create temporary view {{ relation.include(database=false, schema=false) }} as (
      {{ compiled_code }}
    )
  {%- elif not temporary and language == 'sql' and config.get('column_compression')
           and not (partitioned_by or sorted_by) and _is_duckdb_file(relation.database) -%}
    {{ column_compression_ddl(relation, compiled_code, config.get('column_compression')) }}
  {%- else -%}
    {{ dbt.duckdb__create_table_as(temporary, relation, compiled_code, language, partitioned_by, sorted_by) }}
  {%- endif -%}
{%- endmacro %}

{% macro _is_duckdb_file(database) -%}
  {#- Column compression is a DuckDB storage option: a DuckLake stores Parquet files instead. -#}
  {%- set found = run_query("select type from duckdb_databases() where database_name = '"
                            ~ database | replace("'", "''") ~ "'") -%}
  {%- do return(found.rows | length == 1 and found.rows[0][0] == 'duckdb') -%}
{%- endmacro %}

{% macro column_compression_ddl(relation, compiled_code, compression) -%}
  {#- The table declared with the query's columns and types (DuckDB's DESCRIBE; in the contract's order
      when the model has an enforced contract, checked first as dbt does), each column named in
      `compression` ({column: method}) with `using compression <method>`, then filled by the query:
      the table a CREATE TABLE AS makes, as quick to write. Names and methods are checked before
      they reach SQL. -#}
  {%- set methods = ['zstd', 'dict_fsst', 'uncompressed'] -%}
  {%- set described = run_query("describe select * from (" ~ compiled_code ~ ") as model_subq") -%}
  {%- set types = {} -%}
  {%- for row in described.rows -%}{%- do types.update({row[0]: row[1]}) -%}{%- endfor -%}
  {%- for column, method in compression.items() -%}
    {%- if column not in types or method not in methods -%}
      {{ exceptions.raise_compiler_error(
          "column_compression of " ~ model.name ~ ": " ~ column ~ ": " ~ method ~ " needs a column of the model"
          ~ " (" ~ types.keys() | join(', ') ~ ") and one of " ~ methods | join(', ')) }}
    {%- endif -%}
  {%- endfor -%}
  {%- if config.get('contract').enforced -%}
    {{ get_assert_columns_equivalent(compiled_code) }}
    {%- set names = model.columns.keys() | list -%}
  {%- else -%}
    {%- set names = described.columns[0].values() | list -%}
  {%- endif -%}
  {%- set quoted = [] -%}
  {%- for name in names -%}{%- do quoted.append(adapter.quote(name)) -%}{%- endfor %}
  create table {{ relation }} (
    {%- for name in names %}
    {{ adapter.quote(name) }} {{ types[name] }}
    {%- if name in compression %} using compression {{ compression[name] }}{% endif %}
    {{- ',' if not loop.last }}
    {%- endfor %}
  );
  insert into {{ relation }} ({{ quoted | join(', ') }})
  select {{ quoted | join(', ') }} from (
    {{ compiled_code }}
  ) as model_subq
{%- endmacro %}
