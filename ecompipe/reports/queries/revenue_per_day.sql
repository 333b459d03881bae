-- Revenue, active customers and transactions per day.
select
    transaction_date as date,
    cast(sum(total_spent) as decimal(18, 2)) as revenue,
    count(distinct customer_id) as active_customers,
    sum(num_purchases)::bigint as transactions,
from agg_customer_daily
group by transaction_date
order by transaction_date
