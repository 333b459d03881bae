{{
  config(
    pre_hook = "{{ replace_scope('partition_date') }}",
  )
}}
-- depends_on: {{ source('raw', 'transactions') }}

{# Compiling this model checks every scope file's header first: a missing required column or an
    empty file fails the date here, before any table is changed. #}

with

partition_files as (

    select * from {{ raw_line_counts() }}

)

select * from partition_files
