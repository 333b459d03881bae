{{ config(materialized = 'view') }}

{# The per-date quality report: the row accounting and the latest outcome of every dbt test whose
    run covered the date. A view over tables keyed by date (no run state in it), read by the JSON
    report writer and the dashboard. #}

with

accounting as (

    select * from {{ ref('int_partitions__row_accounting') }}

),

test_results as (

    -- Recorded by the on-run-end hook (macros/record_test_results.sql).
    select * from {{ ref('stg_dbt_hooks__test_results') }}

),

accounting_checks as (

    select
        partition_date,
        'row_conservation' as check_name,
        'int_partitions__row_accounting' as model_name,
        'error' as severity,
        case when unaccounted_rows = 0 then 'pass' else 'fail' end as status,
        abs(unaccounted_rows) as failures,
        format(
            'raw {} = kept {} + duplicates {} + invalid {} + quarantined {} + rejected {}{}',
            raw_rows, kept_rows, duplicate_rows,
            negative_price_rows + price_above_max_rows + non_positive_quantity_rows,
            quarantined_rows, rejected_rows,
            case when unaccounted_rows <> 0 then format(' (unaccounted {})', unaccounted_rows) else '' end
        ) as message,
    from accounting

),

latest_tests as (

    select
        accounting.partition_date,
        test_results.test_name as check_name,
        test_results.model_name,
        test_results.severity,
        test_results.status,
        test_results.failures,
        test_results.message,
    from accounting
    inner join test_results
        on
            accounting.partition_date between coalesce(test_results.scope_start, accounting.partition_date)
            and coalesce(test_results.scope_end, accounting.partition_date)
    qualify row_number() over (
        partition by accounting.partition_date, test_results.test_name
        order by test_results.recorded_at desc
    ) = 1

),

final as (

    select * from accounting_checks
    union all
    select * from latest_tests

)

select * from final
