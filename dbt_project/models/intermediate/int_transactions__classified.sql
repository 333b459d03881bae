{{ config(pre_hook="{{ replace_scope('partition_date') }}") }}

with

{{ scoped_import('staged', 'stg_raw__transactions') }},

ranked as (

    select
        *,
        -- Keep the first occurrence in file order (the lab's drop_duplicates(keep='first')).
        row_number() over (
            partition by partition_date, transaction_id
            order by source_row_number
        ) as occurrence,
    from staged

),

classified as (

    select
        * exclude (occurrence),
        case
            when parse_error is not null then 'quarantined'
            when occurrence > 1 then 'duplicate'
            when price < 0 then 'negative_price'
            when price > {{ var('max_valid_price', 10000) }} then 'price_above_max'
            when quantity <= 0 then 'non_positive_quantity'
            else 'kept'
        end as row_status,
    from ranked

)

select * from classified
