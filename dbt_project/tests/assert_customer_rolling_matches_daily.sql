{{ config(severity = 'error') }}
{#-
  agg_customer_rolling, recomputed independently (a self-join of the daily aggregates instead of
  window functions) for the rows this run rewrote: any missing, extra, duplicated or different row
  fails. An incremental bug (a stale window after a late re-delivery or an out-of-order backfill)
  shows up here.
-#}

with

daily as (

    select * from {{ ref('agg_customer_daily') }}
    -- The windows of the rewritten rows need 29 days before them: history is never scanned whole.
    where {{ scope_filter_for_tests('transaction_date', days_before=29, days_after=29) }}

),

rolling as (

    select * from {{ ref('agg_customer_rolling') }}
    where {{ scope_filter_for_tests('transaction_date', days_after=29) }}

),

expected as (

    select
        anchor.customer_id,
        anchor.transaction_date,
        sum(history.num_purchases) filter (where history.transaction_date > anchor.transaction_date - 7)
            as purchases_7d,
        sum(history.total_spent) filter (where history.transaction_date > anchor.transaction_date - 7)
            as spent_7d,
        sum(history.num_purchases) as purchases_30d,
        sum(history.total_spent) as spent_30d,
        count(*) as active_days_30d,
    from daily as anchor
    inner join daily as history
        on
            anchor.customer_id = history.customer_id
            and history.transaction_date between anchor.transaction_date - 29 and anchor.transaction_date
    where {{ scope_filter_for_tests('anchor.transaction_date', days_after=29) }}
    group by anchor.customer_id, anchor.transaction_date

),

duplicated as (

    select
        customer_id,
        transaction_date,
        'duplicate row' as problem,
    from rolling
    group by customer_id, transaction_date
    having count(*) > 1

),

different as (

    select
        coalesce(expected.customer_id, rolling.customer_id) as customer_id,
        coalesce(expected.transaction_date, rolling.transaction_date) as transaction_date,
        case
            when rolling.customer_id is null then 'missing row'
            when expected.customer_id is null then 'unexpected row'
            else 'different values'
        end as problem,
    from expected
    full outer join rolling
        on
            expected.customer_id = rolling.customer_id
            and expected.transaction_date = rolling.transaction_date
    where
        rolling.customer_id is null
        or expected.customer_id is null
        or rolling.purchases_7d is distinct from expected.purchases_7d
        or rolling.spent_7d is distinct from expected.spent_7d
        or rolling.purchases_30d is distinct from expected.purchases_30d
        or rolling.spent_30d is distinct from expected.spent_30d
        or rolling.active_days_30d is distinct from expected.active_days_30d

)

select * from duplicated
union all
select * from different
