{{ config(pre_hook="{{ replace_scope('transaction_date') }}") }}

with

{{ scoped_import('transactions', 'fct_transactions') }},

aggregated as (

    select
        customer_id,
        transaction_date,
        count(*) as num_purchases,
        cast(sum(total_amount) as decimal(18, 2)) as total_spent,
        cast(avg(total_amount) as double) as avg_order_value,
    from transactions
    group by customer_id, transaction_date

)

select * from aggregated
