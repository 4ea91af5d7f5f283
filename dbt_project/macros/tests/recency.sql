{#- Fails when the newest value of `field` is older than `interval` `datepart`s (or absent). -#}
{% test recency(model, field, datepart, interval) %}

with

newest as (

    select max({{ field }}) as newest_value
    from {{ model }}

)

select newest_value
from newest
where
    newest_value is null
    or newest_value < {{ dbt.dateadd(datepart, -1 * interval, dbt.current_timestamp()) }}

{% endtest %}
