"""Sample keys of the rows a failed column rule found, for the data-docs check page.

GX reports a sample of the unexpected *values* (for a not-null rule: a list of nulls); a
reader needs to know *which rows*. For a failed ``not_null``, ``range``, ``accepted_values``
or ``unique`` rule this reads up to ``LIMIT`` rows of the batch that break it, with the
table's key: the primary key declared in ``pipelines.yml`` for a raw table, the column dbt
tests as ``unique`` for a mart (from the manifest of the last build).
"""

from __future__ import annotations

from psycopg2 import sql

from elt.config import ProjectConfig, Rule
from expectations.rules import quote_identifier

LIMIT = 10


def key_columns(config: ProjectConfig, schema: str | None, table: str) -> list[str]:
    """The key of a raw table (pipelines.yml) or of a mart (dbt's unique tests)."""
    if schema and schema.startswith("raw_"):
        source = config.sources.get(schema.removeprefix("raw_"))
        items = {}
        for section in ("tables", "resources", "files"):
            items.update(getattr(source, section, None) or {})
        item = items.get(table)
        return list(item.primary_key) if item is not None else []
    from elt.lineage import dbt_manifest

    for node in dbt_manifest(config).get("nodes", {}).values():
        meta = node.get("test_metadata") or {}
        attached = (node.get("attached_node") or "").split(".")[-1]
        if meta.get("name") == "unique" and attached == table and node.get("column_name"):
            return [node["column_name"]]
    return []


def _predicate(rule: Rule, relation: sql.Composable) -> sql.Composable | None:
    column = sql.SQL(quote_identifier(str(rule.column))) if rule.column else None
    if column is None:
        return None
    if rule.type == "not_null":
        return sql.SQL("{} is null").format(column)
    if rule.type == "range":
        parts = []
        if rule.min is not None:
            parts.append(sql.SQL("{} < {}").format(column, sql.Literal(rule.min)))
        if rule.max is not None:
            parts.append(sql.SQL("{} > {}").format(column, sql.Literal(rule.max)))
        return sql.SQL(" or ").join(parts)
    if rule.type == "accepted_values":
        values = sql.SQL(", ").join(sql.Literal(v) for v in rule.values)
        return sql.SQL("{} not in ({})").format(column, values)
    if rule.type == "unique":
        return sql.SQL("{} in (select {} from {} group by 1 having count(*) > 1)").format(
            column, column, relation
        )
    return None


def failing_keys(cur, rule: Rule, relation: sql.Composable, keys: list[str]) -> dict | None:
    """{"columns", "rows"}: the keys (and the checked column) of up to LIMIT failing rows."""
    where = _predicate(rule, relation)
    if where is None or not keys:
        return None
    columns = [*keys, *([str(rule.column)] if rule.column and rule.column not in keys else [])]
    select = sql.SQL(", ").join(sql.SQL(quote_identifier(c)) for c in columns)
    query = sql.SQL("select {} from {} where {} limit {}").format(
        select, relation, where, sql.Literal(LIMIT)
    )
    cur.execute(query)
    return {"columns": columns, "rows": [[str(v) for v in row] for row in cur.fetchall()]}
