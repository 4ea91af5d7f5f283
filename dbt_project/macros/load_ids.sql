{#-
    dlt load ids are unix timestamps written as text with ten integer digits (until 2286), so
    their text order is their time order and max()/greatest() on the text pick the newest load.
-#}

{#- The newest of several load-id expressions, ignoring nulls (a row from an outer join). -#}
{% macro latest_load_id(columns) -%}
    {{ return(adapter.dispatch('latest_load_id')(columns)) }}
{%- endmacro %}

{% macro default__latest_load_id(columns) -%}
    nullif(greatest(
        {%- for column in columns %}
        coalesce({{ column }}, ''){{ ',' if not loop.last }}
        {%- endfor %}
    ), '')
{%- endmacro %}

{#- PostgreSQL's greatest() already ignores nulls -#}
{% macro postgres__latest_load_id(columns) -%}
    greatest({{ columns | join(', ') }})
{%- endmacro %}


{#-
    Incremental filter: rows loaded at most `lookback_days` (var) before the newest load already
    in {{ this }}. Filtering on the load, not on business time, picks up late-arriving rows
    (an old ordered_at in a new load); the lookback catches loads that committed out of order.
-#}
{% macro in_incremental_window(load_id_column='load_id') -%}
    cast({{ load_id_column }} as numeric) >= (
        select coalesce(max(cast(load_id as numeric)), 0) - {{ var('lookback_days', 3) }} * 86400
        from {{ this }}
    )
{%- endmacro %}
