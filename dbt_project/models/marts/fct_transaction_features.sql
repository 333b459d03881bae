{{ config(pre_hook="{{ replace_scope('partition_date') }}") }}

with

{{ scoped_import('transactions', 'fct_transactions') }},

{{ scoped_import('customer_daily', 'agg_customer_daily', 'transaction_date') }},

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
