{#-
    Fails when the rows that repeat a key (all but the first of each key) number more than
    max_duplicates; returns every repeated key with its row count. The key is `columns`, or the
    column the test is attached to.
-#}
{% test duplicates_at_most(model, column_name=none, columns=none, max_duplicates=0) %}
{%- set key_columns = columns if columns else ([column_name] if column_name else []) -%}
{%- if not key_columns -%}
    {{ exceptions.raise_compiler_error(
        "duplicates_at_most on " ~ model ~ ": give `columns` or attach the test to a column"
    ) }}
{%- endif %}

with

repeated_keys as (

    select
        {%- for key_column in key_columns %}
        {{ key_column }},
        {%- endfor %}
        count(*) as count_rows

    from {{ model }}
    group by {{ key_columns | join(', ') }}
    having count(*) > 1

),

excess as (

    select sum(count_rows - 1) as count_duplicates
    from repeated_keys

)

select repeated_keys.*
from repeated_keys
cross join excess
where excess.count_duplicates > {{ max_duplicates }}

{% endtest %}
