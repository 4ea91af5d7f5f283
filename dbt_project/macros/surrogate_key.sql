{#- A stable text key (md5) from several columns; a null and an empty string hash differently. -#}
{% macro surrogate_key(columns) -%}
    {{ return(adapter.dispatch('surrogate_key')(columns)) }}
{%- endmacro %}

{% macro default__surrogate_key(columns) -%}
    {%- set fields = [] -%}
    {%- for column in columns -%}
        {%- do fields.append(
            "coalesce(cast(" ~ column ~ " as " ~ dbt.type_string() ~ "), '_dbt_null_')"
        ) -%}
        {%- if not loop.last %}{% do fields.append("'|'") %}{% endif -%}
    {%- endfor -%}
    {{ dbt.hash(dbt.concat(fields)) }}
{%- endmacro %}
