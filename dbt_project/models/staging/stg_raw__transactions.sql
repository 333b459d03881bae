{#- The files are read into this session's memory before the model's transaction begins (a
    transaction may write to one database only): see stage_raw_rows. -#}
{#- transaction_id is stored with zstd, as in fct_transactions (see there). -#}
{{
  config(
    column_compression = {'transaction_id': 'zstd'},
    pre_hook = [
      "{{ replace_scope('partition_date') }}",
      {"sql": "{{ reset_raw_rejects() }}", "transaction": false},
      {"sql": "{{ stage_raw_rows() }}", "transaction": false},
    ],
    post_hook = [
      "{{ persist_raw_rejects() }}",
      {"sql": "{{ drop_staged_raw_rows() }}", "transaction": false},
    ],
  )
}}
-- depends_on: {{ source('raw', 'transactions') }}
-- depends_on: {{ ref('stg_raw__partitions') }}

with

source as (

    -- The scope's raw files, every parsed line numbered in file order: read into this session's
    -- memory by the pre-hook stage_raw_rows (macros/read_raw_partitions.sql).
    select * from {{ staged_raw_rows() }}

),

typed as (

    select
        partition_date,
        source_row_number,
        {{ trimmed_text('transaction_id') }} as transaction_id,
        {{ trimmed_text('customer_id') }} as customer_id,
        {{ trimmed_text('product_id') }} as product_id,
        {{ trimmed_text('category') }} as category,
        -- DuckDB's casts from text skip surrounding whitespace themselves: no trim() needed.
        try_cast(price as decimal(18, 2)) as price,
        try_cast(quantity as integer) as quantity,
        {{ trimmed_text('payment_method') }} as payment_method,
        {{ utc_timestamp('timestamp') }} as transaction_at,
        price as price_text,
        quantity as quantity_text,
        timestamp as timestamp_text,
    from source

),

final as (

    select
        * exclude (price_text, quantity_text, timestamp_text),
        -- The delivered text of a value that did not parse is kept here, in the reason, and nowhere
        -- else: a day's rows are written once, typed.
        case
            when transaction_id is null then 'missing transaction_id'
            when customer_id is null then 'missing customer_id'
            when product_id is null then 'missing product_id'
            when price is null then 'unparseable price: ' || coalesce(price_text, '<empty>')
            when quantity is null then 'unparseable quantity: ' || coalesce(quantity_text, '<empty>')
            when transaction_at is null then 'unparseable timestamp: ' || coalesce(timestamp_text, '<empty>')
            when cast(transaction_at as date) <> partition_date
                then 'timestamp outside partition date: ' || timestamp_text
        end as parse_error,
    from typed

)

select * from final
