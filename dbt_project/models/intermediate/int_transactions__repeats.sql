{{ config(pre_hook="{{ replace_scope('partition_date') }}") }}

{#- The lines that repeat an earlier line's transaction_id within their date, in file order: the
    duplicates the cleaning drops. Ranking a day's rows is the costly part of the duplicate rule, so
    it is done once, here, on three columns (~1 s at 10M rows), and stored: the classification view
    joins these few rows instead of ranking the day's rows again, with all their columns, for each of
    its readers (2.7 s in fct_transactions alone at 10M, 1.5 s in the row accounting). -#}

with

{{ scoped_import('staged', 'stg_raw__transactions') }},

repeats as (

    select
        partition_date,
        source_row_number,
        transaction_id,
    from staged
    -- Lines without a transaction_id are ranked together like any value: they are quarantined
    -- whatever else is true of them, so their rank never decides anything. (Leaving them out here
    -- costs more than ranking them: 0.25 s at 10M.)
    qualify row_number() over (
        partition by partition_date, transaction_id
        order by source_row_number
    ) > 1

)

select * from repeats
