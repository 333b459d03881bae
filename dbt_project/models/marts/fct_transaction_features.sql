{#- A view: the features are computed where they are read (the day's Parquet export, a notebook),
    from tables already written, instead of writing every clean row a second time. A query filtered
    on partition_date joins only those dates' rows. Same query for every run: no run state. -#}
{{ config(materialized = 'view') }}

with

transactions as (

    select * from {{ ref('fct_transactions') }}

),

customer_daily as (

    select * from {{ ref('agg_customer_daily') }}

),

joined as (

    select
        transactions.*,
        customer_daily.num_purchases as customer_num_purchases,
        customer_daily.total_spent as customer_total_spent,
        customer_daily.avg_order_value as customer_avg_order_value,
    from transactions
    left join customer_daily
        on
            transactions.customer_id = customer_daily.customer_id
            and transactions.transaction_date = customer_daily.transaction_date

)

select * from joined
