-- Row accounting per partition date for a warehouse built before int_partitions__row_accounting
-- existed: the classified rows only, so no rejected lines.
select
    partition_date as date,
    count(*) as raw,
    count(*) filter (row_status = 'kept') as kept,
    count(*) filter (row_status = 'duplicate') as duplicate,
    count(*) filter (row_status in ('negative_price', 'price_above_max', 'non_positive_quantity')) as invalid,
    count(*) filter (row_status = 'quarantined') as quarantined,
    0 as rejected,
from int_transactions__classified
group by partition_date
order by partition_date
