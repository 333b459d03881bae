{{
  config(
    pre_hook = "{{ replace_scope('partition_date') }}",
  )
}}

{# Row conservation per date: every data line of the raw file is accounted for, as kept, dropped
    (duplicate or invalid, by reason), quarantined (unusable values) or rejected (malformed line).
    Its tests gate the marts: fct_transactions depends on this model. #}

with

partition_files as (

    select * from {{ ref('stg_raw__partitions') }}
    where {{ scope_filter('partition_date') }}

),

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
        count(*) filter (where row_status = 'kept') as kept_rows,
        count(*) filter (where row_status = 'duplicate') as duplicate_rows,
        count(*) filter (where row_status = 'negative_price') as negative_price_rows,
        count(*) filter (where row_status = 'price_above_max') as price_above_max_rows,
        count(*) filter (where row_status = 'non_positive_quantity') as non_positive_quantity_rows,
        count(*) filter (where row_status = 'quarantined') as quarantined_rows,
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
        coalesce(classified.kept_rows, 0) as kept_rows,
        coalesce(classified.duplicate_rows, 0) as duplicate_rows,
        coalesce(classified.negative_price_rows, 0) as negative_price_rows,
        coalesce(classified.price_above_max_rows, 0) as price_above_max_rows,
        coalesce(classified.non_positive_quantity_rows, 0) as non_positive_quantity_rows,
        coalesce(classified.quarantined_rows, 0) as quarantined_rows,
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
