-- Row accounting per partition date, from the model that already accounts for every raw row
-- (rejected = malformed CSV lines, which never reach the classified transactions).
select
    partition_date as date,
    raw_rows as raw,
    kept_rows as kept,
    duplicate_rows as duplicate,
    negative_price_rows + price_above_max_rows + non_positive_quantity_rows as invalid,
    quarantined_rows as quarantined,
    rejected_rows as rejected,
from int_partitions__row_accounting
order by partition_date
