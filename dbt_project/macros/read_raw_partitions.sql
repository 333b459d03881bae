{#-
  Reading the raw CSV partitions of the run scope, robustly.

  The source `raw.transactions` describes every partition (a glob). A model reads only the files of
  its scope, listed explicitly: a glob sniffs every file on disk, so one bad file of another day would
  break every run. Each file is read with explicit VARCHAR columns taken from its own header (files
  with the same header in one scan), so that:
    * reordered columns are matched by name, extra columns are tolerated (and reported);
    * a missing required column fails the date before anything is changed, naming file and columns;
    * malformed lines (wrong field count, bad encoding) go to DuckDB's reject tables instead of
      failing the day (see persist_raw_rejects), and bad values are typed with try_cast in staging.
-#}

{% macro required_raw_columns() -%}
    {%- do return(['transaction_id', 'customer_id', 'product_id', 'price', 'quantity', 'timestamp']) -%}
{%- endmacro %}

{% macro optional_raw_columns() -%}
    {%- do return(['category', 'payment_method']) -%}
{%- endmacro %}

{% macro raw_root() -%}
    {{- (env_var('PIPELINE_DATA_DIR', '../data') ~ '/raw') | replace("'", "''") -}}
{%- endmacro %}

{% macro _line_reader(paths, encoding='latin-1', rejects_table=none, buffer_size=none) -%}
    {#- Every line of the files as one VARCHAR (a delimiter that never occurs, no quoting). latin-1
        accepts any byte; with another encoding a line that does not decode is skipped, and kept in
        `rejects_table` (with its `_scans` table) when one is named. `buffer_size`: bytes read at a
        time (DuckDB's default when none). -#}
    read_csv([{% for path in paths %}'{{ path }}'{{ ', ' if not loop.last }}{% endfor %}], columns = {'line': 'VARCHAR'},
             header = false, delim = '\x1f', quote = '', escape = '', auto_detect = false, ignore_errors = true,
             strict_mode = false, encoding = '{{ encoding }}'
             {%- if buffer_size %}, buffer_size = {{ buffer_size | int }}{% endif %}
             {%- if rejects_table %}, store_rejects = true, rejects_table = '{{ rejects_table }}',
             rejects_scan = '{{ rejects_table }}_scans', rejects_limit = 0{% endif %})
{%- endmacro %}

{% macro _count_lines(paths) -%}
    {#- {path: non-empty lines} of the files, without parsing fields, in one scan of them all (on
        every core). An empty line is NULL here and no data line for the CSV parser either; a line of
        spaces is counted, as the parser sets it aside as a malformed line (too few fields). Lines
        are decoded as UTF-8, and a line that is not valid UTF-8 is counted from DuckDB's reject
        table: decoding every byte as latin-1 instead costs twice the time of the count. Read 32 MB
        at a time, as staging reads: 0.75-0.81 s for a 10M-row file against 0.85-1.24 s with
        DuckDB's default read size. -#}
    {%- do run_query("drop table if exists temp.main.raw_line_rejects; "
                     ~ "drop table if exists temp.main.raw_line_rejects_scans") -%}
    {%- set counted = run_query(
        "select file_index, count(line) from "
        ~ _line_reader(paths, encoding='utf-8', rejects_table='raw_line_rejects', buffer_size=33554432) ~ " group by file_index") -%}
    {%- set lines = {} -%}
    {%- for path in paths -%}{%- do lines.update({path: 0}) -%}{%- endfor -%}
    {%- for row in counted.rows -%}{%- do lines.update({paths[row[0]]: row[1]}) -%}{%- endfor -%}
    {%- set undecodable = run_query(
        "select scans.file_path, count(distinct errors.line) from temp.main.raw_line_rejects as errors "
        ~ "join temp.main.raw_line_rejects_scans as scans using (scan_id, file_id) group by scans.file_path") -%}
    {%- for row in undecodable.rows -%}
        {%- set path = row[0] | replace("'", "''") -%}{#- as listed: quotes doubled for SQL -#}
        {%- do lines.update({path: lines[path] + row[1]}) -%}
    {%- endfor -%}
    {%- do return(lines) -%}
{%- endmacro %}

{% macro raw_partition_files() -%}
    {#- [(date, path)] for the scope; a full refresh lists every partition on disk. -#}
    {%- set files = [] -%}
    {%- set scope = run_scope() -%}
    {%- if not execute or target.name == 'lint' -%}
        {#- Parsing, or compiling for a linter (target `lint`): no file is read. -#}
        {%- do return(files) -%}
    {%- endif -%}
    {%- if scope.full -%}
        {%- set listing = run_query(
            "select file from glob('" ~ raw_root() ~ "/*/transactions.csv') order by file") -%}
        {%- for row in listing.rows -%}
            {%- set day = row[0].split('/')[-2] -%}
            {%- if modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', day) and _is_real_date(day) -%}
                {%- do files.append((day, row[0] | replace("'", "''"))) -%}{#- paths are kept SQL-quoted -#}
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
            {%- if path | replace("''", "'") not in present -%}{%- do missing.append(day ~ ' (' ~ path | replace("''", "'") ~ ')') -%}{%- endif -%}
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

{% macro raw_file_layouts(count_lines=true) -%}
    {#- For each scope file: its header's columns (in file order), extras, and the required check.
        count_lines: also count the data lines and check var min_raw_rows. Counting reads the whole
        file, so only stg_raw__partitions (which compiles first and records the count) asks for it;
        stg_raw__transactions needs the header only. -#}
    {%- set files = raw_partition_files() -%}
    {%- set layouts = [] -%}
    {%- if not files -%}{%- do return(layouts) -%}{%- endif -%}
    {%- set parts = [] -%}
    {%- for day, path in files -%}
        {%- do parts.append("select " ~ loop.index0 ~ " as position, (select line from " ~ _line_reader([path])
            ~ " limit 1) as header") -%}
    {%- endfor -%}
    {%- set headers = {} -%}
    {%- for row in run_query(parts | join(' union all ')).rows -%}
        {%- do headers.update({row[0]: row[1]}) -%}
    {%- endfor -%}
    {%- set line_counts = _count_lines(files | map(attribute=1) | list) if count_lines else {} -%}
    {%- set problems = [] -%}
    {%- for day, path in files -%}
        {%- set header = headers.get(loop.index0) -%}
        {%- if header is none or header | trim == '' -%}
            {%- do problems.append(day ~ ": " ~ path ~ " is empty (no header line)") -%}
        {%- else -%}
            {%- set columns = [] -%}
            {%- set extra = [] -%}
            {%- for raw_name in header.rstrip('\r').split(',') -%}
                {%- set name = raw_name | trim | replace('"', '') | lower -%}
                {%- if not modules.re.fullmatch('[a-z_][a-z0-9_]{0,62}', name) or name in columns -%}
                    {#- Never interpolate a strange header into SQL: give it a positional name. -#}
                    {%- set name = 'unnamed_column_' ~ loop.index -%}
                {%- endif -%}
                {%- do columns.append(name) -%}
                {%- if name not in required_raw_columns() and name not in optional_raw_columns() -%}
                    {%- do extra.append(name) -%}
                {%- endif -%}
            {%- endfor -%}
            {%- set missing = [] -%}
            {%- for name in required_raw_columns() if name not in columns -%}{%- do missing.append(name) -%}{%- endfor -%}
            {%- if missing -%}
                {%- do problems.append(day ~ ": " ~ path ~ " is missing required column(s) " ~ missing | join(', ')
                    ~ " (header: " ~ header | trim ~ ")") -%}
            {%- endif -%}
            {%- set data_lines = ([line_counts.get(path, 0) - 1, 0] | max) if count_lines else none -%}
            {%- if count_lines and data_lines < var('min_raw_rows', 100) -%}
                {%- do problems.append(day ~ ": " ~ path ~ " has " ~ data_lines ~ " data row(s), at least "
                    ~ var('min_raw_rows', 100) ~ " expected (var min_raw_rows)") -%}
            {%- endif -%}
            {%- if extra -%}
                {%- do log("Raw partition " ~ day ~ " has extra column(s) " ~ extra | join(', ') ~ ": ignored", info=true) -%}
            {%- endif -%}
            {%- do layouts.append({"day": day, "path": path, "columns": columns, "extra": extra,
                                   "data_lines": data_lines}) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if problems -%}
        {{ exceptions.raise_compiler_error(
            "Refusing to load: " ~ problems | join('; ') ~ ". Nothing was changed. Fix or re-deliver the file, then rerun the date.") }}
    {%- endif -%}
    {%- do return(layouts) -%}
{%- endmacro %}

{% macro _empty_raw_relation() -%}
    (select
        null::date as partition_date,
        null::varchar as transaction_id, null::varchar as customer_id, null::varchar as product_id,
        null::varchar as category, null::varchar as price, null::varchar as quantity,
        null::varchar as payment_method, null::varchar as "timestamp"
    where false)
{%- endmacro %}

{% macro read_raw_files(layouts, first_number) -%}
    {#- Every parsed data row of scope files that share one header (layouts of raw_file_layouts),
        canonical columns, file after file in the order given and each file's rows in file order
        (DuckDB keeps the order of a CSV scan, over several files too; stage_raw_rows checks that
        each file's rows came together).
        One scan over all the files reads them on every core, however small each one is. Each row
        carries its file's number (`first_number` + its place in the list), not its path: an
        integer is cheaper to store and to join on than a path on every row.
        The scan reads 32 MB at a time: DuckDB's default read size took 7.0-9.2 s to stage a
        10M-row file on 2 cores, 32 MB 5.3-6.6 s (a 1M-row file: the same or quicker; one of 100k
        rows fits either way). -#}
    {%- set column_types = [] -%}
    {%- for name in layouts[0].columns -%}{%- do column_types.append("'" ~ name ~ "': 'VARCHAR'") -%}{%- endfor -%}
    {%- set paths = [] -%}
    {%- for layout in layouts -%}{%- do paths.append("'" ~ layout.path ~ "'") -%}{%- endfor -%}
    select
        {{ first_number }} + file_index as file_number,
        {%- for name in required_raw_columns() + optional_raw_columns() %}
        {{ '"' ~ name ~ '"' if name in layouts[0].columns else 'null::varchar' }} as "{{ name }}",
        {%- endfor %}
    from read_csv([{{ paths | join(', ') }}], columns = { {{- column_types | join(', ') -}} }, header = true,
                  delim = ',', quote = '"', escape = '"', auto_detect = false, buffer_size = 33554432,
                  store_rejects = true, rejects_table = 'raw_reject_errors', rejects_scan = 'raw_reject_scans',
                  rejects_limit = 0)
{%- endmacro %}

{% macro _layout_groups(layouts) -%}
    {#- The layouts grouped by header (usually one group: every file has the same columns), in scope order. -#}
    {%- set groups = {} -%}
    {%- set keys = [] -%}
    {%- for layout in layouts -%}
        {%- set key = layout.columns | join(',') -%}
        {%- if key not in groups -%}{%- do groups.update({key: []}) -%}{%- do keys.append(key) -%}{%- endif -%}
        {%- do groups[key].append(layout) -%}
    {%- endfor -%}
    {%- set ordered = [] -%}
    {%- for key in keys -%}{%- do ordered.append(groups[key]) -%}{%- endfor -%}
    {%- do return(ordered) -%}
{%- endmacro %}

{% macro staged_raw_rows() -%}
    {#- The scope's parsed rows as staged by stage_raw_rows, each file's numbered in file order
        (`source_row_number`): DuckDB keeps insertion order, so a row's place in its file is its
        rowid in the stage less the rowid of its file's first row (`raw_files`). A row carries its
        date, not its file's path: the date names the file (stg_raw__partitions), and a path
        written on every row cost 0.9 s of staging's write at 10M rows. -#}
    {%- if not raw_file_layouts(count_lines=false) -%}
        (select *, null::bigint as source_row_number from {{ _empty_raw_relation() }})
    {%- else -%}
        (
            select
                files.partition_date,
                staged.* exclude (file_number),
                staged.rowid - files.first_rowid + 1 as source_row_number,
            from raw_stage.main.raw_rows as staged
            inner join raw_stage.main.raw_files as files on staged.file_number = files.file_number
        )
    {%- endif -%}
{%- endmacro %}

{% macro stage_raw_rows() -%}
    {#- Pre-hook of stg_raw__transactions: the scope's files (read_raw_files, one scan per header
        layout) into one table of an in-memory database attached to this dbt session only (no other
        process sees it), read on every core; then each file's number, date, path and first rowid
        (`raw_files`). A row_number() over the scan would number the rows too, but DuckDB runs an
        order-keeping window on one thread, and with it everything after it in the pipeline:
        reading, typing and writing a day took twice as long. -#}
    {#- The files' line counts and the min_raw_rows check belong to stg_raw__partitions (upstream). -#}
    {%- set layouts = raw_file_layouts(count_lines=false) -%}
    attach if not exists ':memory:' as raw_stage;
    {%- if layouts %}
    create or replace table raw_stage.main.raw_rows (
        file_number bigint,
        {%- for name in required_raw_columns() + optional_raw_columns() %}
        "{{ name }}" varchar{{ ',' if not loop.last }}
        {%- endfor %}
    );
    {#- Files are numbered in the order they are staged (a group after another). #}
    {%- set numbered = [] %}
    {%- for group in _layout_groups(layouts) %}
    insert into raw_stage.main.raw_rows {{ read_raw_files(group, numbered | length) }};
    {%- for layout in group %}{% do numbered.append(layout) %}{% endfor %}
    {%- endfor %}
    create or replace table raw_stage.main.raw_files as
    select
        files.file_number,
        files.partition_date,
        files.source_file,
        coalesce(staged.first_rowid, 0) as first_rowid,
        coalesce(staged.last_rowid - staged.first_rowid + 1 = staged.staged_rows, true) as contiguous,
    from (values
        {%- for layout in numbered %}
        {{ ',' if not loop.first }}({{ loop.index0 }}, date '{{ layout.day }}', '{{ layout.path }}')
        {%- endfor %}
    ) as files (file_number, partition_date, source_file)
    left join (
        select file_number, min(rowid) as first_rowid, max(rowid) as last_rowid, count(*) as staged_rows,
        from raw_stage.main.raw_rows
        group by file_number
    ) as staged on files.file_number = staged.file_number;
    {#- The numbering needs each file's rows together, in file order: refuse rather than misnumber. #}
    select error('The rows of ' || source_file || ' were not staged together: cannot number them in file order')
    from raw_stage.main.raw_files
    where not contiguous;
    {%- endif %}
{%- endmacro %}

{% macro drop_staged_raw_rows() -%}
    detach database if exists raw_stage
{%- endmacro %}

{% macro raw_line_counts() -%}
    {#- Per scope file: header and non-blank data lines (counted by raw_file_layouts, no field parsing). -#}
    {%- set layouts = raw_file_layouts(count_lines=true) -%}
    {%- if not layouts -%}
        (select null::date as partition_date, null::varchar as source_file, null::varchar as header_line,
                null::varchar as extra_columns, null::bigint as data_lines where false)
    {%- else -%}
        (values
        {%- for layout in layouts %}
            {{ ',' if not loop.first }}(date '{{ layout.day }}', '{{ layout.path }}', '{{ layout.columns | join(",") }}',
             '{{ layout.extra | join(",") }}', {{ layout.data_lines }}::bigint)
        {%- endfor %}
        ) as file_lines (partition_date, source_file, header_line, extra_columns, data_lines)
    {%- endif -%}
{%- endmacro %}

{% macro reset_raw_rejects() -%}
    drop table if exists temp.main.raw_reject_errors;
    drop table if exists temp.main.raw_reject_scans
{%- endmacro %}

{% macro persist_raw_rejects() -%}
    {#- Post-hook of staging: copy this read's rejected lines from DuckDB's session tables into the
        reject log, replacing the scope's dates (same transaction as the staging insert). -#}
    create table if not exists main.raw_reject_log (
        partition_date date, source_file varchar, line bigint, column_name varchar,
        error_type varchar, error_message varchar, csv_line varchar
    );
    delete from main.raw_reject_log where {{ scope_filter_for_tests('partition_date') }};
    {%- if execute and raw_partition_files() %}
    insert into main.raw_reject_log
    select
        cast(regexp_extract(scans.file_path, '([0-9]{4}-[0-9]{2}-[0-9]{2})/[^/]+$', 1) as date),
        scans.file_path,
        errors.line,
        errors.column_name,
        cast(errors.error_type as varchar),
        errors.error_message,
        errors.csv_line,
    from temp.main.raw_reject_errors as errors
    join temp.main.raw_reject_scans as scans using (scan_id, file_id)
    {%- endif %}
{%- endmacro %}

{% macro _raw_read_failures(results) -%}
    {#- The failures of this run that a file the CSV reader could not split into rows can cause:
        staging's read stopping (DuckDB's "state machine reached an invalid state"), or lines read
        together as malformed ones, which fails a test of the rejects (their grain) or of the row
        accounting (unaccounted rows, the unusable share). Failures of the marts are no reason to
        read the files again. -#}
    {%- set failures = [] -%}
    {%- for result in results if result.status in ('error', 'fail') -%}
        {%- set attached = (result.node.attached_node or '').split('.')[-1] if result.node.resource_type == 'test' else '' -%}
        {%- if (result.node.name == 'stg_raw__transactions' and 'state machine reached an invalid state' in (result.message or ''))
               or attached in ('stg_raw__rejects', 'int_partitions__row_accounting') -%}
            {%- do failures.append(result) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- do return(failures) -%}
{%- endmacro %}

{% macro _line_endings(paths, max_bytes) -%}
    {#- {path: (CRLF, LF alone, CR alone)} of the files, counted in their bytes read as text, where
        DuckDB writes a byte that is no printable character as `\xNN`. That holds a file several
        times over in memory (~8 GB for a file of 1 GB), so the files are counted one at a time, in
        the order given, up to `max_bytes` of them in all: a failed full refresh of a year must not
        read every file again. -#}
    {%- set counts = {} -%}
    {%- set quoted = [] -%}
    {%- for path in paths -%}{%- do quoted.append("'" ~ path | replace("'", "''") ~ "'") -%}{%- endfor -%}
    {%- set sizes = {} -%}
    {%- if paths -%}
        {%- for row in run_query("select filename, size from read_blob([" ~ quoted | join(', ') ~ "])").rows -%}
            {%- do sizes.update({row[0]: row[1]}) -%}
        {%- endfor -%}
    {%- endif -%}
    {%- set budget = namespace(left=max_bytes) -%}
    {%- for path in paths if path in sizes and sizes[path] <= budget.left -%}
        {%- set budget.left = budget.left - sizes[path] -%}
        {%- set count_sql -%}
            select
                (length(text) - length(replace(text, '\x0D\x0A', ''))) // 8 as crlf,
                (length(text) - length(replace(text, '\x0A', ''))) // 4 as lf,
                (length(text) - length(replace(text, '\x0D', ''))) // 4 as cr,
            from (select content::varchar as text from read_blob('{{ path | replace("'", "''") }}'))
        {%- endset -%}
        {%- set row = run_query(count_sql).rows[0] -%}
        {%- do counts.update({path: (row[0], row[1] - row[0], row[2] - row[0])}) -%}
    {%- endfor -%}
    {%- do return(counts) -%}
{%- endmacro %}

{% macro explain_raw_read_failure(results) -%}
    {#- on-run-end: a file that mixes line endings, or has a carriage return inside an unquoted value,
        cannot be split into its lines by DuckDB's CSV reader: it stops with a generic "state machine
        reached an invalid state", or reads the rest of the file as one malformed line (see
        _raw_read_failures). Either way, name the date, the file and what is wrong with it. A build
        without such a failure reads nothing. -#}
    {%- set failures = _raw_read_failures(results) if execute else [] -%}
    {%- set max_bytes = var('line_ending_count_max_bytes', 268435456) | int -%}
    {%- if failures -%}
        {%- set named = [] -%}
        {%- for result in failures -%}
            {%- set found = modules.re.search('file = (.+)', result.message or '') -%}
            {%- if found -%}{%- do named.append(found.group(1).strip()) -%}{%- endif -%}
        {%- endfor -%}
        {%- set files = [] -%}
        {%- for day, path in raw_partition_files() if not named or path | replace("''", "'") in named -%}
            {%- do files.append((day, path | replace("''", "'"))) -%}
        {%- endfor -%}
        {%- set counts = _line_endings(files | map(attribute=1) | list, max_bytes) -%}
        {%- set problems = [] -%}
        {%- for day, path in files -%}
            {%- set found = [] -%}
            {%- if path in counts -%}
                {%- set crlf, lf_alone, cr_alone = counts[path] -%}
                {%- if crlf and lf_alone -%}
                    {%- do found.append("mixes line endings (" ~ crlf ~ " line(s) end in CRLF, " ~ lf_alone ~ " in LF alone)") -%}
                {%- endif -%}
                {%- if cr_alone and (crlf or lf_alone) -%}
                    {%- do found.append("has " ~ cr_alone ~ " carriage return(s) (\\r) that end no line") -%}
                {%- endif -%}
            {%- elif path in named -%}
                {%- do found.append("mixes line endings (CRLF and LF) or has a carriage return (\\r) that ends no "
                    ~ "line (not counted: the file is over " ~ max_bytes ~ " bytes, var line_ending_count_max_bytes)") -%}
            {%- endif -%}
            {%- if found -%}{%- do problems.append(day ~ ": " ~ path ~ " " ~ found | join(' and ')) -%}{%- endif -%}
        {%- endfor -%}
        {%- if problems -%}
            {#- Failed as the hook's SQL, not at its compilation: dbt then lists it with the run's
                other errors at the end, instead of ending the run as if interrupted. -#}
            {%- set message = "Refusing to load: " ~ problems | join('; ')
                ~ ", which the CSV reader cannot split into rows. Nothing was published for the date. "
                ~ "Re-deliver the file with one line ending throughout (LF, or CRLF: e.g. converted with "
                ~ "dos2unix), then rerun the date." -%}
            select error('{{ message | replace("'", "''") }}')
        {%- else -%}
            select 1
        {%- endif -%}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
