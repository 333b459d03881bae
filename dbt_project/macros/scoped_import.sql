{% macro scoped_import(cte_name, model_name, column='partition_date', days_before=0, days_after=0) -%}
    {#- An import CTE of an incremental model: another model's rows of the run scope only (the whole
        model on a full refresh or a first run); `days_before` / `days_after` widen it for trailing
        windows, as in scope_filter. -#}
{{ cte_name }} as (

    select * from {{ ref(model_name) }}
    where {{ scope_filter(column, days_before=days_before, days_after=days_after) }}

)
{%- endmacro %}
