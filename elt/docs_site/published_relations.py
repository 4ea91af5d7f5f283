"""dbt docs that name the relation readers query, not the audit table dbt built.

dbt builds every mart into the audit schema; publish copies the ones the gate let through
into the published schema under the same name. ``dbt docs generate`` only knows the first,
so the copied docs would send an analyst to ``audit.customers``, which the reader role cannot
see. This rewrites the copied ``manifest.json`` and ``catalog.json`` of the marts a run
actually published: their schema and relation name become the published ones, and the node's
``meta.elt_built_in`` keeps where dbt built and tested it. Everything else is left as dbt
wrote it (staging views really live where dbt says).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

BUILT_IN = "elt_built_in"


def _relation(database: str | None, schema: str, identifier: str) -> str:
    parts = [p for p in (database, schema, identifier) if p]
    return ".".join(f'"{p}"' for p in parts)


def _published_nodes(
    manifest: dict[str, Any], published: set[str], audit_schema: str
) -> dict[str, dict[str, Any]]:
    """The manifest's model nodes that publish copied: built in the audit schema, named as a
    published table."""
    found = {}
    for unique_id, node in manifest.get("nodes", {}).items():
        if node.get("resource_type") != "model" or node.get("schema") != audit_schema:
            continue
        if (node.get("alias") or node.get("name")) in published:
            found[unique_id] = node
    return found


def name_published(
    dbt_dir: Path, published: Iterable[str], published_schema: str, audit_schema: str
) -> list[str]:
    """Point the docs in ``dbt_dir`` at ``published_schema`` for the marts in ``published``
    (relation names); returns the unique ids it rewrote."""
    manifest_path, catalog_path = dbt_dir / "manifest.json", dbt_dir / "catalog.json"
    if not manifest_path.exists():
        return []
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    nodes = _published_nodes(manifest, set(published), audit_schema)
    for node in nodes.values():
        identifier = node.get("alias") or node["name"]
        built_in = f"{node['schema']}.{identifier}"
        node["schema"] = published_schema
        node["relation_name"] = _relation(node.get("database"), published_schema, identifier)
        node["meta"] = {**(node.get("meta") or {}), BUILT_IN: built_in}
        config = node.get("config") or {}
        config["meta"] = {**(config.get("meta") or {}), BUILT_IN: built_in}
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    if catalog_path.exists():
        catalog = json.loads(catalog_path.read_text(encoding="utf-8"))
        for unique_id in nodes:
            entry = catalog.get("nodes", {}).get(unique_id)
            if entry and "metadata" in entry:
                entry["metadata"]["schema"] = published_schema
        catalog_path.write_text(json.dumps(catalog), encoding="utf-8")
    return sorted(nodes)
