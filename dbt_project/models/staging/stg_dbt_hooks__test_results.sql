{{ config(materialized = 'view') }}

{# The latest outcome of every data test per run scope, as recorded by the on-run-end hook. A view:
    readers always see the results of the runs so far. #}

with

test_results as (

    select * from {{ source('dbt_hooks', 'dbt_test_results') }}

),

final as (

    select
        scope_start,
        scope_end,
        test_name,
        model_name,
        severity,
        status,
        failures,
        message,
        invocation_id,
        recorded_at,
    from test_results

)

select * from final
