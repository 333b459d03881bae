-- Revenue per day and product category, with each category's share of the day's revenue.
-- Shell: make sql, then  .read dbt_project/analyses/revenue_by_day_and_category.sql
-- depends_on: {{ ref('fct_transactions') }}
select
    transaction_date,
    category,
    count(*) as transactions,
    sum(quantity) as units,
    sum(total_amount) as revenue,
    round(
        100 * sum(total_amount) / sum(sum(total_amount)) over (partition by transaction_date), 1
    ) as revenue_share_pct,
from fct_transactions
group by transaction_date, category
order by transaction_date asc, revenue desc, category asc;
