{#-
    Timestamps as timestamptz, independent of the session's time zone: a source column may be
    `timestamp` (no zone, read as UTC) or `timestamptz` depending on the loader.
-#}
{% macro utc_timestamptz(column_name) -%}
    {{ return(adapter.dispatch('utc_timestamptz')(column_name)) }}
{%- endmacro %}

{% macro default__utc_timestamptz(column_name) -%}
    cast({{ column_name }} as {{ dbt.type_timestamp() }})
{%- endmacro %}

{#- extract(epoch …) counts a zoneless timestamp as UTC and a timestamptz as the instant it is -#}
{% macro postgres__utc_timestamptz(column_name) -%}
    to_timestamp(extract(epoch from {{ column_name }}))
{%- endmacro %}


{#- The calendar day (UTC) of a timestamptz. -#}
{% macro utc_date(column_name) -%}
    {{ return(adapter.dispatch('utc_date')(column_name)) }}
{%- endmacro %}

{% macro default__utc_date(column_name) -%}
    cast({{ column_name }} as date)
{%- endmacro %}

{% macro postgres__utc_date(column_name) -%}
    cast(timezone('UTC', {{ column_name }}) as date)
{%- endmacro %}


{#- When a dlt load started: its load id is a unix timestamp such as '1764500000.123456'. -#}
{% macro load_id_to_timestamp(column_name) -%}
    {{ return(adapter.dispatch('load_id_to_timestamp')(column_name)) }}
{%- endmacro %}

{% macro default__load_id_to_timestamp(column_name) -%}
    {{ dbt.dateadd('second', 'cast(' ~ column_name ~ ' as numeric)', "cast('1970-01-01' as " ~ dbt.type_timestamp() ~ ")") }}
{%- endmacro %}

{% macro postgres__load_id_to_timestamp(column_name) -%}
    to_timestamp(cast({{ column_name }} as numeric))
{%- endmacro %}
