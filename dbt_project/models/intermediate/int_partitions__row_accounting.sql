{{ config(pre_hook="{{ replace_scope('partition_date') }}") }}

{# Row conservation per date: every data line of the raw file is accounted for, as kept, dropped
    (duplicate or invalid, by reason), quarantined (unusable values) or rejected (malformed line).
    Its tests gate the marts: fct_transactions depends on this model. #}
{#- Every row_status of int_transactions__classified, one count column each, in this order. #}
{%- set row_statuses = [
    'kept', 'duplicate', 'negative_price', 'price_above_max', 'non_positive_quantity', 'quarantined'
] %}

with

{{ scoped_import('partition_files', 'stg_raw__partitions') }},

rejects as (

    select
        partition_date,
        count(distinct line) as rejected_lines,
    from {{ ref('stg_raw__rejects') }}
    where {{ scope_filter('partition_date') }}
    group by partition_date

),

classified as (

    select
        partition_date,
        count(*) as staged_rows,
        {%- for status in row_statuses %}
            count(*) filter (where row_status = '{{ status }}') as {{ status }}_rows,
        {%- endfor %}
    from {{ ref('int_transactions__classified') }}
    where {{ scope_filter('partition_date') }}
    group by partition_date

),

accounted as (

    select
        partition_files.partition_date,
        partition_files.source_file,
        partition_files.extra_columns,
        partition_files.data_lines as raw_rows,
        {%- for status in row_statuses %}
            coalesce(classified.{{ status }}_rows, 0) as {{ status }}_rows,
        {%- endfor %}
        coalesce(rejects.rejected_lines, 0) as rejected_rows,
    from partition_files
    left join classified on partition_files.partition_date = classified.partition_date
    left join rejects on partition_files.partition_date = rejects.partition_date

),

final as (

    select
        *,
        raw_rows - (
            kept_rows + duplicate_rows + negative_price_rows + price_above_max_rows
            + non_positive_quantity_rows + quarantined_rows + rejected_rows
        ) as unaccounted_rows,
        case when raw_rows > 0 then (quarantined_rows + rejected_rows) / raw_rows else 0 end as unusable_share,
        case when raw_rows > 0 then negative_price_rows / raw_rows else 0 end as negative_price_share,
        case when raw_rows > 0 then duplicate_rows / raw_rows else 0 end as duplicate_share,
    from accounted

)

select * from final
