-- The latest result of each dbt test for each of the dates given as the one parameter (a list of dates).
-- A result with a NULL scope (a full refresh) covers every date.
with dates as (select unnest(?::date[]) as date),
latest as (
    select dates.date, results.test_name, results.model_name, results.severity, results.status,
           results.failures, results.message, results.recorded_at,
    from dates
    join main.dbt_test_results as results
        on dates.date between coalesce(results.scope_start, dates.date) and coalesce(results.scope_end, dates.date)
    qualify row_number() over (partition by dates.date, results.test_name order by results.recorded_at desc) = 1
)
select * from latest order by date, test_name
