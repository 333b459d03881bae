{#-
  Tests on incremental tables should look at the run scope's rows, not the whole history (cheaper,
  and an old day's problem must not fail today's run). dbt does not allow project macros in a
  test's `where` config, so tests write the placeholder `__run_scope__(<date column>)` and this
  override of dbt's own macro turns it into the scope predicate.
-#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- if where -%}
        {#- `__run_scope__(col)` or `__run_scope__(col, N)`: N more days after the scope (trailing windows). -#}
        {%- set match = modules.re.search('__run_scope__\\(\\s*([a-z_]+)\\s*(?:,\\s*([0-9]+)\\s*)?\\)', where) -%}
        {%- if match -%}
            {%- set predicate = scope_filter_for_tests(match.group(1), (match.group(2) or 0) | int) -%}
            {%- set where = where.replace(match.group(0), predicate) -%}
        {%- endif -%}
        {%- if execute and '__run_scope__' in where -%}
            {{ exceptions.raise_compiler_error("Malformed __run_scope__(column) in test where: " ~ where) }}
        {%- endif -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
