-- Data quality per partition date: what happened to the raw rows (row_status), and the latest
-- outcome of every dbt test that covered the date (a full refresh, scope NULL, covers every date).
-- Shell: make sql, then  .read dbt_project/analyses/data_quality_trend.sql
-- depends_on: {{ ref('int_transactions__classified') }}
-- depends_on: {{ ref('dq_daily') }}
with

rows_by_status as (

    select
        partition_date,
        count(*) as staged_rows,
        count(*) filter (where row_status = 'kept') as kept,
        count(*) filter (where row_status = 'duplicate') as duplicates,
        count(*) filter (where row_status in ('negative_price', 'price_above_max', 'non_positive_quantity')) as invalid,
        count(*) filter (where row_status = 'quarantined') as quarantined,
    from int_transactions__classified
    group by partition_date

),

tests as (

    -- The latest outcome of every dbt test that covered the date: the quality report view, less its
    -- row_conservation check (the row accounting's own, not a dbt test).
    select
        partition_date,
        count(*) filter (where status = 'pass') as tests_passed,
        count(*) filter (where status = 'warn') as tests_warned,
        count(*) filter (where status in ('fail', 'error')) as tests_failed,
        string_agg(
            check_name, ', '
            order by check_name
        ) filter (where status <> 'pass') as not_passing,
    from dq_daily
    where check_name <> 'row_conservation'
    group by partition_date

)

select
    rows_by_status.*,
    round(100 * rows_by_status.kept / nullif(rows_by_status.staged_rows, 0), 1) as kept_pct,
    round(
        100 * (rows_by_status.duplicates + rows_by_status.invalid + rows_by_status.quarantined)
        / nullif(rows_by_status.staged_rows, 0),
        1
    ) as dropped_pct,
    coalesce(tests.tests_passed, 0) as tests_passed,
    coalesce(tests.tests_warned, 0) as tests_warned,
    coalesce(tests.tests_failed, 0) as tests_failed,
    tests.not_passing,
from rows_by_status
left join tests on rows_by_status.partition_date = tests.partition_date
order by rows_by_status.partition_date;
