{{ config(severity = 'error') }}
{#-
  Each date this run exported has a clean file and a features file with the same number of rows:
  fct_transaction_features is fct_transactions joined to one row per customer and day, so it has
  the clean rows, no more, no fewer. Reads the export log (row counts taken from the files written),
  not the rows: no pass over the day's rows.
-#}

with

exported as (

    select * from {{ ref('export_daily_parquet') }}

),

per_date as (

    select
        partition_date,
        count(*) filter (where dataset = 'processed') as clean_files,
        count(*) filter (where dataset = 'features') as features_files,
        sum(row_count) filter (where dataset = 'processed') as clean_rows,
        sum(row_count) filter (where dataset = 'features') as features_rows,
    from exported
    group by partition_date

)

select * from per_date
where clean_files <> 1 or features_files <> 1 or clean_rows is distinct from features_rows
