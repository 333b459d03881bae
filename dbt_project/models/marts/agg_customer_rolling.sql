{#-
  Trailing 7- and 30-day customer features, one row per (customer_id, transaction_date) on which the
  customer bought. A run for dates [A, B] rewrites the rows of [A, B + 29]: every date whose 30-day
  window contains a date of the run. It reads the daily aggregates of [A - 29, B + 29] only, so its
  cost does not grow with history, and the result does not depend on the order in which dates are
  (re)processed: the last run touching any day of a row's window recomputes that row from the
  current daily aggregates (late re-deliveries, out-of-order backfills and bulk chunks all converge
  to what a full refresh gives).
-#}
{%- set window_days = 30 -%}

{{
  config(
    pre_hook = "{{ replace_scope('transaction_date', days_after=" ~ (window_days - 1) ~ ") }}",
  )
}}

with

{{ scoped_import(
    'daily', 'agg_customer_daily', 'transaction_date', days_before=window_days - 1, days_after=window_days - 1
) }},

windowed as (

    select
        customer_id,
        transaction_date,
        sum(num_purchases) over last_7_days as purchases_7d,
        cast(sum(total_spent) over last_7_days as decimal(18, 2)) as spent_7d,
        sum(num_purchases) over last_30_days as purchases_30d,
        cast(sum(total_spent) over last_30_days as decimal(18, 2)) as spent_30d,
        count(*) over last_30_days as active_days_30d,
    from daily
    window
        last_7_days as (
            partition by customer_id
            order by transaction_date
            range between interval '6 days' preceding and current row
        ),
        last_30_days as (
            partition by customer_id
            order by transaction_date
            range between interval '{{ window_days - 1 }} days' preceding and current row
        )

),

final as (

    select
        customer_id,
        transaction_date,
        cast(purchases_7d as bigint) as purchases_7d,
        spent_7d,
        cast(spent_7d / purchases_7d as double) as avg_order_value_7d,
        cast(purchases_30d as bigint) as purchases_30d,
        spent_30d,
        cast(spent_30d / purchases_30d as double) as avg_order_value_30d,
        cast(active_days_30d as bigint) as active_days_30d,
    from windowed
    -- The input's extra leading days only feed the windows; their own rows belong to other runs.
    where {{ scope_filter('transaction_date', days_after=window_days - 1) }}

)

select * from final
