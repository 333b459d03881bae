{{
  config(
    pre_hook = "{{ replace_scope('partition_date') }}",
  )
}}
-- depends_on: {{ ref('stg_raw__transactions') }}

{# Lines DuckDB's CSV reader could not parse (wrong field count, bad encoding), written to the
    reject log by stg_raw__transactions' post-hook in the same session as the read: the depends_on
    above makes this model run after it. #}

with

reject_log as (

    select * from {{ source('dbt_hooks', 'raw_reject_log') }}
    where {{ scope_filter('partition_date') }}

),

final as (

    select
        partition_date,
        source_file,
        line,
        column_name,
        error_type,
        error_message,
        csv_line,
    from reject_log

)

select * from final
