"""Which rows a failed column rule found: GX's ``unexpected_index_list``, keyed by the table's
key, for the data-docs check page.

GX reports a sample of the unexpected *values* (for a not-null rule: a list of nulls); a
reader needs to know *which rows*. GX says so itself when the result format names the
columns that identify a row (``unexpected_index_column_names``): each checkpoint of the gate
runs the suites of one table, with that table's key — the primary key declared in
``pipelines.yml`` for a raw table, the column dbt tests as ``unique`` for a mart (from the
manifest of the last build) — and a failed column check keeps up to ``LIMIT`` of the rows GX
returns in ``partial_unexpected_index_list`` (the key and the checked column).
"""

from __future__ import annotations

from typing import Any

from elt.config import ProjectConfig

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


def result_format(base: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    """``base`` asking GX for the keys of the unexpected rows too (``keys`` may be empty)."""
    return {**base, "unexpected_index_column_names": list(keys)} if keys else dict(base)


def from_result(result: dict[str, Any]) -> dict[str, Any] | None:
    """{"columns", "rows"}: the rows GX found, as ``unexpected_index_list`` keyed them
    (None when GX returned no keyed rows)."""
    found = result.get("partial_unexpected_index_list") or result.get("unexpected_index_list")
    if not found or not isinstance(found[0], dict):
        return None
    columns = list(found[0])
    rows = [["null" if row.get(c) is None else str(row.get(c)) for c in columns] for row in found]
    return {"columns": columns, "rows": rows[:LIMIT]}
