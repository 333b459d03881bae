-- Data quality per partition date: what happened to the raw rows (row_status), and the latest
-- outcome of every dbt test that covered the date (a full refresh, scope NULL, covers every date).
-- Shell: make sql, then  .read dbt_project/analyses/data_quality_trend.sql
-- depends_on: {{ ref('int_transactions__classified') }}
with

rows_by_status as (

    select
        partition_date,
        count(*) as staged_rows,
        count(*) filter (row_status = 'kept') as kept,
        count(*) filter (row_status = 'duplicate') as duplicates,
        count(*) filter (row_status in ('negative_price', 'price_above_max', 'non_positive_quantity')) as invalid,
        count(*) filter (row_status = 'quarantined') as quarantined,
    from int_transactions__classified
    group by partition_date

),

latest_tests as (

    select rows_by_status.partition_date, results.test_name, results.status,
    from rows_by_status
    join main.dbt_test_results as results
        on rows_by_status.partition_date between coalesce(results.scope_start, rows_by_status.partition_date)
                                             and coalesce(results.scope_end, rows_by_status.partition_date)
    qualify row_number() over (
        partition by rows_by_status.partition_date, results.test_name order by results.recorded_at desc
    ) = 1

),

tests as (

    select
        partition_date,
        count(*) filter (status = 'pass') as tests_passed,
        count(*) filter (status = 'warn') as tests_warned,
        count(*) filter (status in ('fail', 'error')) as tests_failed,
        string_agg(test_name, ', ' order by test_name) filter (status <> 'pass') as not_passing,
    from latest_tests
    group by partition_date

)

select
    rows_by_status.*,
    round(100 * kept / nullif(staged_rows, 0), 1) as kept_pct,
    round(100 * (duplicates + invalid + quarantined) / nullif(staged_rows, 0), 1) as dropped_pct,
    coalesce(tests.tests_passed, 0) as tests_passed,
    coalesce(tests.tests_warned, 0) as tests_warned,
    coalesce(tests.tests_failed, 0) as tests_failed,
    tests.not_passing,
from rows_by_status
left join tests using (partition_date)
order by partition_date;
