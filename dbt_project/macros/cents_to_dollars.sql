{#- Integer cents → dollars as numeric(16, 2). -#}
{% macro cents_to_dollars(column_name) -%}
    {{ return(adapter.dispatch('cents_to_dollars')(column_name)) }}
{%- endmacro %}

{% macro default__cents_to_dollars(column_name) -%}
    cast({{ column_name }} / 100.0 as numeric(16, 2))
{%- endmacro %}

{#- exact: numeric division, never a float on the way -#}
{% macro postgres__cents_to_dollars(column_name) -%}
    cast(cast({{ column_name }} as numeric) / 100 as numeric(16, 2))
{%- endmacro %}
