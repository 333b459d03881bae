{#-
  The run scope: which raw partitions (dates) one invocation processes.

    --vars '{run_date: D}'                 -> [D, D]
    --vars '{start_date: A, end_date: B}'  -> [A, B], both included
    PIPELINE_RUN_DATE=D (no date vars)     -> [D, D]
    --full-refresh (no date vars)          -> every partition on disk

  PIPELINE_RUN_DATE is how Airflow hands the date to dbt: read only while executing, never while
  parsing, so that dbt's partial parsing survives from one date to the next (every new --vars
  forces a full parse of the project: about 2 s a build).

  Dates are interpolated into SQL and file paths, so they are validated strictly here, before any
  SQL runs (on-run-start), and every model filters by the scope so that a run never touches another
  date's rows.
-#}

{% macro _is_real_date(text) -%}
    {%- set year, month, day = text[0:4] | int, text[5:7] | int, text[8:10] | int -%}
    {%- if month < 1 or month > 12 or day < 1 -%}{%- do return(false) -%}{%- endif -%}
    {%- set month_days = [31, 29 if (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)) else 28,
                          31, 30, 31, 30, 31, 31, 30, 31, 30, 31] -%}
    {%- do return(day <= month_days[month - 1]) -%}
{%- endmacro %}

{% macro _checked_date(name, value, source='var') -%}
    {#- source: 'var' (--vars) or 'environment variable': what the error names and how it shows a fix. -#}
    {%- set text = value | string -%}
    {%- if not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', text) or not _is_real_date(text) -%}
        {%- set example = ("dbt build --vars '{" ~ name ~ ": 2024-01-15}'") if source == 'var'
                          else (name ~ "=2024-01-15") -%}
        {{ exceptions.raise_compiler_error(
            "Invalid " ~ source ~ " " ~ name ~ "=" ~ (text | tojson) ~ ": expected a real calendar date in "
            ~ "YYYY-MM-DD form, e.g. " ~ example) }}
    {%- endif -%}
    {%- do return(text) -%}
{%- endmacro %}

{% macro run_scope() -%}
    {#- Returns {"full": bool, "start": "YYYY-MM-DD" or none, "end": ...}. -#}
    {%- set run_date = var('run_date', none) -%}
    {%- set start_date = var('start_date', none) -%}
    {%- set end_date = var('end_date', none) -%}
    {%- if run_date is not none and (start_date is not none or end_date is not none) -%}
        {{ exceptions.raise_compiler_error(
            "Give either run_date or start_date/end_date, not both (got run_date=" ~ run_date
            ~ ", start_date=" ~ start_date ~ ", end_date=" ~ end_date ~ ")") }}
    {%- endif -%}
    {%- if run_date is not none -%}
        {%- set day = _checked_date('run_date', run_date) -%}
        {%- do return({"full": false, "start": day, "end": day}) -%}
    {%- endif -%}
    {%- if start_date is not none or end_date is not none -%}
        {%- if start_date is none or end_date is none -%}
            {{ exceptions.raise_compiler_error(
                "A date range needs both start_date and end_date, e.g. "
                ~ "dbt build --vars '{start_date: 2024-01-01, end_date: 2024-01-31}'") }}
        {%- endif -%}
        {%- set first = _checked_date('start_date', start_date) -%}
        {%- set last = _checked_date('end_date', end_date) -%}
        {%- if last < first -%}
            {{ exceptions.raise_compiler_error(
                "end_date " ~ last ~ " is before start_date " ~ first) }}
        {%- endif -%}
        {%- do return({"full": false, "start": first, "end": last}) -%}
    {%- endif -%}
    {#- Not read while parsing (execute is false then): dbt would record the variable against every
        model and parse them all again whenever its value changes. -#}
    {%- set env_date = env_var('PIPELINE_RUN_DATE', '') if execute else '' -%}
    {%- if env_date -%}
        {%- set day = _checked_date('PIPELINE_RUN_DATE', env_date, 'environment variable') -%}
        {%- do return({"full": false, "start": day, "end": day}) -%}
    {%- endif -%}
    {%- if flags.FULL_REFRESH -%}
        {%- do return({"full": true, "start": none, "end": none}) -%}
    {%- endif -%}
    {%- if target.name == 'lint' -%}
        {#- The `lint` target (profiles.yml), for tools that compile every model without running it
            (sqlfluff's dbt templater): no scope needed, and raw_partition_files lists no file. -#}
        {%- do return({"full": true, "start": none, "end": none}) -%}
    {%- endif -%}
    {%- if execute and flags.WHICH in ('build', 'run', 'test', 'compile', 'show') -%}
        {{ exceptions.raise_compiler_error(
            "No run date given. Process one day with: dbt build --vars '{run_date: 2024-01-15}', "
            ~ "a range with --vars '{start_date: 2024-01-01, end_date: 2024-01-31}', "
            ~ "or rebuild everything from every raw partition with: dbt build --full-refresh") }}
    {%- endif -%}
    {#- parse, docs generate, ls: no scope needed; render a harmless one. -#}
    {%- do return({"full": true, "start": none, "end": none}) -%}
{%- endmacro %}

{% macro validate_run_scope() -%}
    {%- set scope = run_scope() -%}
    {%- if execute -%}
        {%- if scope.full -%}
            {%- do log("Run scope: every raw partition (full refresh)", info=true) -%}
        {%- else -%}
            {%- do log("Run scope: " ~ scope.start ~ " to " ~ scope.end, info=true) -%}
        {%- endif -%}
    {%- endif -%}
    {#- Tables written by hooks exist before any model reads them. -#}
    create table if not exists main.dbt_test_results (
        scope_start date, scope_end date, test_name varchar, model_name varchar, severity varchar,
        status varchar, failures bigint, message varchar, invocation_id varchar,
        recorded_at timestamp default current_timestamp
    );
    create table if not exists main.raw_reject_log (
        partition_date date, source_file varchar, line bigint, column_name varchar,
        error_type varchar, error_message varchar, csv_line varchar
    )
{%- endmacro %}

{% macro _shifted(day, days) -%}
    {#- A validated YYYY-MM-DD date moved by a number of days, as YYYY-MM-DD. -#}
    {%- do return((modules.datetime.date.fromisoformat(day) + modules.datetime.timedelta(days=days)).isoformat()) -%}
{%- endmacro %}

{% macro _scope_predicate(column, scope, days_before, days_after) -%}
    {{ column }} between date '{{ _shifted(scope.start, -days_before) }}' and date '{{ _shifted(scope.end, days_after) }}'
{%- endmacro %}

{% macro scope_filter(column, days_before=0, days_after=0) -%}
    {#- A predicate on a date column that keeps only the run scope's dates, optionally widened: a
        trailing-window model reads `days_before` more days of input and rewrites the `days_after`
        following days, whose windows contain the scope. -#}
    {%- set scope = run_scope() -%}
    {%- if scope.full or not is_incremental() -%}
        true
    {%- else -%}
        {{ _scope_predicate(column, scope, days_before | int, days_after | int) }}
    {%- endif -%}
{%- endmacro %}

{% macro scope_dates() -%}
    {#- The scope's dates as a list of YYYY-MM-DD strings (empty for a full refresh). -#}
    {%- set scope = run_scope() -%}
    {%- set dates = [] -%}
    {%- if not scope.full -%}
        {%- set first = modules.datetime.date.fromisoformat(scope.start) -%}
        {%- set last = modules.datetime.date.fromisoformat(scope.end) -%}
        {%- for offset in range((last - first).days + 1) -%}
            {%- do dates.append((first + modules.datetime.timedelta(days=offset)).isoformat()) -%}
        {%- endfor -%}
    {%- endif -%}
    {%- do return(dates) -%}
{%- endmacro %}

{% macro replace_scope(column, days_after=0) -%}
    {#- Pre-hook of every incremental model: remove the scope's dates, the model then appends them
        again. Same transaction as the insert, so a failure leaves the old rows in place. Deleting
        explicitly (not delete+insert on a key) is what makes a re-delivered day with zero valid
        rows replace the old rows with nothing. -#}
    {%- if is_incremental() -%}
        delete from {{ this }} where {{ scope_filter(column, days_after=days_after) }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{% macro scope_filter_for_tests(column, days_before=0, days_after=0) -%}
    {#- Tests on incremental tables check the run scope's rows (and the days after it that the run
        rewrote, for trailing-window models), not the whole history. -#}
    {%- set scope = run_scope() -%}
    {%- if scope.full -%}
        true
    {%- else -%}
        {{ _scope_predicate(column, scope, days_before | int, days_after | int) }}
    {%- endif -%}
{%- endmacro %}
