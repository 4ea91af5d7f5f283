{#-
    Post-hook of an incremental model: delete the rows whose key is no longer upstream. Rows
    deleted at the source are deleted from raw (dlt's hard_delete column, key reconciliation);
    a merge never removes a row, so without this they would stay in the mart for good.
-#}
{% macro delete_vanished(key, upstream) -%}
    delete from {{ this }} as target
    where not exists (
        select from {{ upstream }} as upstream
        where upstream.{{ key }} = target.{{ key }}
    )
{%- endmacro %}
