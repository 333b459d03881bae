{#- transaction_id, unique on every row, is stored with zstd: DuckDB's default for text (a dictionary
    with FSST) gains nothing on unique values and takes 0.7 s more to write 10M of them, to a file
    four times larger (macros/incremental_temp_view.sql). -#}
{{
  config(
    pre_hook = "{{ replace_scope('partition_date') }}",
    column_compression = {'transaction_id': 'zstd'},
  )
}}

-- depends_on: {{ ref('int_partitions__row_accounting') }}

with

{{ scoped_import('classified', 'int_transactions__classified') }},

kept as (

    select * from classified
    where row_status = 'kept'

),

final as (

    select
        transaction_id,
        customer_id,
        product_id,
        category,
        price,
        quantity,
        coalesce(payment_method, 'unknown') as payment_method,
        cast(price * quantity as decimal(18, 2)) as total_amount,
        transaction_at,
        cast(transaction_at as date) as transaction_date,
        cast(hour(transaction_at) as integer) as hour,
        -- The lab's pandas dayofweek: Monday = 0 ... Sunday = 6.
        cast(isodow(transaction_at) - 1 as integer) as day_of_week,
        partition_date,
    from kept

)

select * from final
{%- if scope_dates() | length != 1 %}
    -- A range of dates (a bulk chunk, a full refresh) is stored date after date, as a day's run
    -- stores its day: a reader of one date (its export, the features view, a notebook) then reads
    -- only that date's row groups, not every row group of the range.
    order by partition_date
{%- endif %}
