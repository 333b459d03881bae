{{
  config(
    pre_hook = "{{ replace_scope('partition_date') }}",
  )
}}
-- depends_on: {{ ref('stg_raw__transactions') }}

{# Lines DuckDB's CSV reader could not parse (wrong field count, bad encoding), written to
    main.raw_reject_log by stg_raw__transactions' post-hook in the same session as the read. #}

with

rejects as (

    select * from main.raw_reject_log
    where {{ scope_filter('partition_date') }}

)

select * from rejects
