-- The Parquet exports read directly, without the warehouse: rows, customers and revenue per date
-- from data/processed/date=D/transactions_clean.parquet (hive partitioning gives the `date` column).
-- The folder is the DuckDB variable `pipeline_data_dir`, which `make sql` sets to $PIPELINE_DATA_DIR;
-- unset, it is `data`, i.e. the repo's data folder when the shell was started from the repo root.
-- Shell: make sql, then  .read dbt_project/analyses/parquet_exports.sql
-- Python: con.execute("set variable pipeline_data_dir = ?", [data_dir]) first, or read_parquet(<path>).
-- depends_on: {{ ref('export_daily_parquet') }}
select
    date,
    count(*) as transactions,
    count(distinct customer_id) as customers,
    sum(total_amount) as revenue,
from
    read_parquet(
        coalesce(getvariable('pipeline_data_dir'), 'data') || '/processed/*/*.parquet',
        hive_partitioning = true
    )
group by date
order by date;
