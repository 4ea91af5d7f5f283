{#-
  dbt's relation cache enters a relation it knows only from a view dependency with the type
  "external" (dbt/adapters/cache.py, add_link); dropping it then runs `drop external …`, which
  PostgreSQL rejects (seen when a test's stored-failures view is replaced). Drop whatever
  kind of relation it really is instead.
-#}
{%- macro postgres__get_drop_sql(relation) -%}
  {%- if relation.type == 'external' -%}
    {%- set target_sql = relation.render() | replace("'", "''") -%}
do $elt_drop$
declare kind "char";
begin
    select c.relkind into kind
    from pg_class as c join pg_namespace as n on n.oid = c.relnamespace
    where n.nspname = '{{ relation.schema | replace("'", "''") }}'
        and c.relname = '{{ relation.identifier | replace("'", "''") }}';
    if kind = 'v' then execute 'drop view if exists {{ target_sql }} cascade';
    elsif kind = 'm' then execute 'drop materialized view if exists {{ target_sql }} cascade';
    elsif kind in ('r', 'p', 'f') then execute 'drop table if exists {{ target_sql }} cascade';
    end if;
end
$elt_drop$
  {%- else -%}
    {{ dbt.default__get_drop_sql(relation) }}
  {%- endif -%}
{%- endmacro -%}
