{#- A view, not a table: the decision is recomputed where it is read (fct_transactions, the row
    accounting, the tests), which costs less than writing every row of a day once more. Readers filter
    by partition_date and DuckDB applies that filter below the window (it partitions by the date), so
    reading a day costs that day's rows only, however long the history. A view holds no run state:
    it is the same query for every run. -#}
{{ config(materialized = 'view') }}

with

staged as (

    select * from {{ ref('stg_raw__transactions') }}

),

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
