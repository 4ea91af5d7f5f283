{#- Fails when the model and compare_model do not have the same number of rows. -#}
{% test equal_rowcount(model, compare_model) %}

with

counts as (

    select
        (select count(*) from {{ model }}) as count_model_rows,
        (select count(*) from {{ compare_model }}) as count_compare_rows

)

select *
from counts
where count_model_rows != count_compare_rows

{% endtest %}
