{#- Fails when more than max_percentage % of the column's values are null (0 → none allowed). -#}
{% test null_proportion_at_most(model, column_name, max_percentage) %}
{%- if max_percentage is not number or max_percentage < 0 or max_percentage > 100 -%}
    {{ exceptions.raise_compiler_error(
        "null_proportion_at_most on " ~ model ~ "." ~ column_name
        ~ ": max_percentage must be a number from 0 to 100, got " ~ max_percentage
    ) }}
{%- endif %}

with

counts as (

    select
        count(*) as count_rows,
        sum(case when {{ column_name }} is null then 1 else 0 end) as count_nulls

    from {{ model }}

),

proportions as (

    select
        count_rows,
        count_nulls,
        100.0 * count_nulls / count_rows as null_percentage

    from counts
    where count_rows > 0

)

select * from proportions
where null_percentage > {{ max_percentage }}

{% endtest %}
