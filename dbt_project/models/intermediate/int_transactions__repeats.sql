{{ config(pre_hook="{{ replace_scope('partition_date') }}") }}

{#- The lines that repeat an earlier line's transaction_id within their date, in file order: the
    duplicates the cleaning drops. Ranking a day's rows is the costly part of the duplicate rule, so
    it is done once, here, and stored: the classification view joins these few rows instead of
    ranking the day's rows again, with all their columns, for each of its readers (2.7 s in
    fct_transactions alone at 10M, 1.5 s in the row accounting).
    Only the lines whose transaction_id hash occurs more than once in their date are ranked: equal
    values have equal hashes, so every line of a repeated transaction_id is among them, and grouping
    the day's 64-bit hashes costs less than ranking its strings (1.45-1.55 s against 1.72-1.81 s at
    10M rows). -#}

with

{{ scoped_import('staged', 'stg_raw__transactions') }},

-- Not materialized: read twice from the stored columns rather than copied once into memory.
hashed as not materialized (

    select
        partition_date,
        source_row_number,
        transaction_id,
        hash(transaction_id) as transaction_id_hash,
    from staged

),

repeated_hashes as (

    select
        partition_date,
        transaction_id_hash,
    from hashed
    group by partition_date, transaction_id_hash
    having count(*) > 1

),

candidates as (

    select hashed.*
    from hashed
    semi join repeated_hashes
        on
            hashed.partition_date = repeated_hashes.partition_date
            and hashed.transaction_id_hash = repeated_hashes.transaction_id_hash

),

repeats as (

    select
        partition_date,
        source_row_number,
        transaction_id,
    from candidates
    -- Lines without a transaction_id are ranked together like any value: they are quarantined
    -- whatever else is true of them, so their rank never decides anything.
    qualify row_number() over (
        partition by partition_date, transaction_id
        order by source_row_number
    ) > 1

)

select * from repeats
