{#- A view, not a table: the decision is recomputed where it is read (fct_transactions, the row
    accounting), which costs less than writing every row of a day once more. The duplicate rule is
    a join with the few stored repeats, not a ranking of the day's rows. Readers filter by
    partition_date and DuckDB applies that filter to staging's scan, so reading a day costs that
    day's rows only, however long the history. A view holds no run state: it is the same query for
    every run. -#}
{{ config(materialized = 'view') }}

with

staged as (

    select * from {{ ref('stg_raw__transactions') }}

),

repeats as (

    -- Stored per date by int_transactions__repeats: the day's rows are ranked once, there.
    select * from {{ ref('int_transactions__repeats') }}

),

flagged as (

    select
        staged.*,
        repeats.source_row_number is not null as is_repeat,
    from staged
    left join repeats
        on
            staged.partition_date = repeats.partition_date
            and staged.source_row_number = repeats.source_row_number

),

classified as (

    select
        * exclude (is_repeat),
        case
            when parse_error is not null then 'quarantined'
            -- Keep the first occurrence in file order (the lab's drop_duplicates(keep='first')).
            when is_repeat then 'duplicate'
            when price < 0 then 'negative_price'
            when price > {{ var('max_valid_price', 10000) }} then 'price_above_max'
            when quantity <= 0 then 'non_positive_quantity'
            else 'kept'
        end as row_status,
    from flagged

)

select * from classified
