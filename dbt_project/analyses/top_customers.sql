-- Top 20 customers by money spent over every loaded day.
-- Shell: make sql, then  .read dbt_project/analyses/top_customers.sql
-- depends_on: {{ ref('agg_customer_daily') }}
select
    customer_id,
    sum(total_spent) as total_spent,
    sum(num_purchases) as purchases,
    count(*) as active_days,
    round(sum(total_spent) / sum(num_purchases), 2) as avg_order_value,
    min(transaction_date) as first_day,
    max(transaction_date) as last_day,
from agg_customer_daily
group by customer_id
order by total_spent desc, customer_id asc
limit 20;
