"""Production state of a dbt project: the manifest of its last published run, in ``elt_meta``.

``elt dev`` and ``elt ci`` defer to it (``dbt --defer --state``) and compare against it
(``state:modified``). It lives in the warehouse, not on one laptop: every developer and CI
job reads the same state, and a publish from any orchestrator writes it.

Before it is stored, the published marts in it are pointed at the published schema (where
readers see them) instead of the audit schema they were built in; every other node keeps
its audit relation (staging views and helper tables exist only there).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from elt import runs
from elt.marts import Mart
from elt.project import DbtProject

TABLE = f"{runs.SCHEMA}.dbt_state"
log = logging.getLogger(__name__)

# Its own table, created on first use: one row per dbt project (by name, so a laptop's
# checkout and the production image share it), replaced by each publish.
_DDL = f"""
create table if not exists {TABLE} (
    project text primary key,
    pipeline text not null,
    run_id text not null,
    stored_at timestamptz not null default now(),
    manifest text not null
)
"""


def build_manifest(project: DbtProject) -> Path | None:
    """The newest manifest elt has for ``project`` on this machine: the last build's, or the
    orchestrators' parsed one; None when there is neither."""
    candidates = [
        project.target_dir() / "manifest.json",
        project.home() / "manifest" / "manifest.json",
    ]
    found = [path for path in candidates if path.is_file()]
    return max(found, key=lambda path: path.stat().st_mtime) if found else None


def published_view(
    manifest: dict[str, Any], marts: Iterable[Mart], published_schema: str
) -> dict[str, Any]:
    """``manifest`` with the published marts' relations moved to ``published_schema``."""
    nodes = manifest.get("nodes", {})
    for mart in marts:
        node = nodes.get(mart.unique_id)
        if node is None:
            continue
        node["schema"] = published_schema
        identifier = node.get("alias") or node["name"]
        node["relation_name"] = f'"{node["database"]}"."{published_schema}"."{identifier}"'
    return manifest


def store(
    url: str,
    project: DbtProject,
    *,
    pipeline: str,
    run_id: str,
    marts: Iterable[Mart],
    published_schema: str,
) -> bool:
    """Store the state of ``project`` after a publish; False (and a warning) when this
    machine has no manifest of it."""
    path = build_manifest(project)
    if path is None:
        log.warning(
            "no dbt manifest of %s here: the production state was not updated", project.name
        )
        return False
    manifest = published_view(json.loads(path.read_text()), marts, published_schema)
    with runs.connect(url) as conn, conn.cursor() as cur:
        cur.execute(_DDL)
        cur.execute(
            f"insert into {TABLE} (project, pipeline, run_id, manifest) values (%s, %s, %s, %s)"
            " on conflict (project) do update set pipeline = excluded.pipeline,"
            " run_id = excluded.run_id, stored_at = now(), manifest = excluded.manifest",
            (project.name, pipeline, run_id, json.dumps(manifest)),
        )
    return True


def fetch(url: str, project: DbtProject, folder: Path) -> str | None:
    """Write the stored state of ``project`` to ``folder/manifest.json``; returns the run id
    it came from, or None when no run of the project has published yet."""
    with runs.connect(url) as conn, conn.cursor() as cur:
        # read-only: a CI login may read elt_meta without creating anything there
        cur.execute("select to_regclass(%s) is not null", (TABLE,))
        if not one(cur):
            return None
        cur.execute(f"select run_id, manifest from {TABLE} where project = %s", (project.name,))
        row = cur.fetchone()
    if row is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").write_text(str(row[1]))
    return str(row[0])


def one(cur: Any) -> Any:
    """The single value of a one-row, one-column query."""
    row = cur.fetchone()
    return None if row is None else row[0]
