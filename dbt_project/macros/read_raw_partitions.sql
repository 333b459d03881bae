{#-
  Table expression reading the raw CSV partitions of the run scope.

  The source `raw.transactions` describes every partition (a glob). A model reads only the files
  of its scope, listed explicitly: a glob with union_by_name sniffs every file on disk, so one bad
  file of another day would break every run. Everything is read as VARCHAR and typed in staging
  with try_cast, so a malformed value quarantines its row instead of failing the whole day.
  Columns are matched by header name (union_by_name): reordered or extra columns are tolerated.
-#}
{% macro raw_root() -%}
    {{- (env_var('PIPELINE_DATA_DIR', '../data') ~ '/raw') | replace("'", "''") -}}
{%- endmacro %}

{% macro raw_partition_files() -%}
    {#- [(date, path)] for the scope; a full refresh lists every partition on disk. -#}
    {%- set files = [] -%}
    {%- set scope = run_scope() -%}
    {%- if not execute -%}
        {%- do return(files) -%}
    {%- endif -%}
    {%- if scope.full -%}
        {%- set listing = run_query(
            "select file from glob('" ~ raw_root() ~ "/*/transactions.csv') order by file") -%}
        {%- for row in listing.rows -%}
            {%- set day = row[0].split('/')[-2] -%}
            {%- if modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', day) and _is_real_date(day) -%}
                {%- do files.append((day, row[0])) -%}
            {%- else -%}
                {%- do log("Ignoring " ~ row[0] ~ ": its folder is not a YYYY-MM-DD date", info=true) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {%- for day in scope_dates() -%}
            {%- do files.append((day, raw_root() ~ '/' ~ day ~ '/transactions.csv')) -%}
        {%- endfor -%}
        {%- set quoted = [] -%}
        {%- for day, path in files -%}{%- do quoted.append("'" ~ path ~ "'") -%}{%- endfor -%}
        {%- set found = run_query("select file from glob([" ~ quoted | join(', ') ~ "])") -%}
        {%- set present = found.columns[0].values() | list -%}
        {%- set missing = [] -%}
        {%- for day, path in files -%}
            {%- if path not in present -%}{%- do missing.append(day ~ ' (' ~ path ~ ')') -%}{%- endif -%}
        {%- endfor -%}
        {%- if missing -%}
            {{ exceptions.raise_compiler_error(
                "Raw partition missing for " ~ missing | length ~ " date(s): " ~ missing | join(', ')
                ~ ". Nothing was changed. Deliver the file(s), or generate demo data with: "
                ~ "python scripts/generate_ecommerce_data.py --date YYYY-MM-DD") }}
        {%- endif -%}
    {%- endif -%}
    {%- do return(files) -%}
{%- endmacro %}

{% macro read_raw_partitions() -%}
    {%- set files = raw_partition_files() -%}
    {%- if files | length == 0 -%}
        {#- Parsing, or a full refresh with no partition at all: an empty, correctly shaped set. -#}
        (select
            null::varchar as transaction_id, null::varchar as customer_id, null::varchar as product_id,
            null::varchar as category, null::varchar as price, null::varchar as quantity,
            null::varchar as payment_method, null::varchar as "timestamp", null::varchar as filename
        where false)
    {%- else -%}
        {%- set paths = [] -%}
        {%- for day, path in files -%}{%- do paths.append("'" ~ path ~ "'") -%}{%- endfor -%}
        read_csv(
            [{{ paths | join(', ') }}],
            header = true,
            all_varchar = true,
            union_by_name = true,
            filename = true,
            auto_detect = true
        )
    {%- endif -%}
{%- endmacro %}
