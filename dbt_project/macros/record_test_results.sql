{#-
  on-run-end: keep the outcome of every data test of this invocation in `dbt_test_results`, keyed by
  (scope, test), so a rerun of a date replaces its results instead of piling up. Works the same for a
  hand-run `dbt build` and for Cosmos tasks (each of which runs a few tests).
-#}
{% macro _sql_text(value) -%}
    '{{ (value if value is not none else '') | string | replace("'", "''") }}'
{%- endmacro %}

{% macro record_test_results(results) -%}
    {%- if execute and flags.WHICH in ('build', 'test') -%}
        {%- set scope = run_scope() -%}
        {%- set start_sql = "null::date" if scope.full else "date '" ~ scope.start ~ "'" -%}
        {%- set end_sql = "null::date" if scope.full else "date '" ~ scope.end ~ "'" -%}
        {%- set rows = [] -%}
        {%- set names = [] -%}
        {%- for result in results if result.node.resource_type == 'test' -%}
            {%- set attached = (result.node.attached_node or '').split('.')[-1] -%}
            {%- do names.append(_sql_text(result.node.name)) -%}
            {%- do rows.append("(" ~ start_sql ~ ", " ~ end_sql ~ ", " ~ _sql_text(result.node.name) ~ ", "
                ~ _sql_text(attached) ~ ", " ~ _sql_text(result.node.config.severity | lower) ~ ", "
                ~ _sql_text(result.status) ~ ", "
                ~ (result.failures if result.failures is not none else 'null') ~ ", "
                ~ _sql_text(result.message) ~ ", " ~ _sql_text(invocation_id) ~ ")") -%}
        {%- endfor -%}
        {%- if rows -%}
            {%- call statement('create_test_results') -%}
                create table if not exists main.dbt_test_results (
                    scope_start date,
                    scope_end date,
                    test_name varchar,
                    model_name varchar,
                    severity varchar,
                    status varchar,
                    failures bigint,
                    message varchar,
                    invocation_id varchar,
                    recorded_at timestamp default current_timestamp
                )
            {%- endcall -%}
            {%- call statement('clear_test_results') -%}
                delete from main.dbt_test_results
                where scope_start is not distinct from {{ start_sql }}
                  and scope_end is not distinct from {{ end_sql }}
                  and test_name in ({{ names | join(', ') }})
            {%- endcall -%}
            {%- set known = [] -%}
            {%- for node in graph.nodes.values() if node.resource_type == 'test' -%}
                {%- do known.append(_sql_text(node.name)) -%}
            {%- endfor -%}
            {%- call statement('forget_removed_tests') -%}
                -- Results of tests that no longer exist in the project would haunt the reports.
                delete from main.dbt_test_results where test_name not in ({{ known | join(', ') }})
            {%- endcall -%}
            {%- call statement('record_test_results') -%}
                insert into main.dbt_test_results
                    (scope_start, scope_end, test_name, model_name, severity, status, failures, message, invocation_id)
                values {{ rows | join(',\n') }}
            {%- endcall -%}
            {%- do adapter.commit() -%}
        {%- endif -%}
    {%- endif -%}
    select 1
{%- endmacro %}
