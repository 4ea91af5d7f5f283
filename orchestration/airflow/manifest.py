"""The dbt manifest Cosmos renders the DAGs from, produced by ``dbt parse`` ahead of time.

DAG parsing never runs dbt: ``elt airflow parse-manifest`` (and ``elt airflow up``) write
``.elt/dbt/target/manifest.json``; the DAG file only reads it. When a file of the dbt
project is newer than the manifest, the DAG still loads and :func:`stale_files` names the
files so the warning says what to re-run.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from elt import paths

_PROJECT_PARTS = ("models", "macros", "tests", "seeds", "snapshots")
_PROJECT_FILES = ("dbt_project.yml", "packages.yml", "dependencies.yml")


class ManifestError(RuntimeError):
    """The manifest is missing or dbt could not produce it."""


@dataclass(frozen=True)
class ParsedManifest:
    """What :func:`parse_manifest` wrote."""

    path: Path
    nodes: int
    duration_s: float


def target_dir() -> Path:
    """dbt's target folder for the orchestrators (``.elt/dbt/target``)."""
    return paths.state_dir() / "dbt" / "target"


def manifest_path() -> Path:
    """Where the manifest is read from: ``ELT_DBT_MANIFEST`` (the one built into the image,
    or the one ``elt airflow up`` built for its Celery workers), else :func:`target_dir`'s."""
    override = os.environ.get("ELT_DBT_MANIFEST")
    return Path(override) if override else target_dir() / "manifest.json"


def parse_manifest() -> ParsedManifest:
    """Run ``dbt parse`` in-process into :func:`target_dir`; raises :class:`ManifestError`."""
    from elt import dbt

    started = time.monotonic()
    outcome = dbt.invoke("parse", target_path=target_dir())
    path = target_dir() / "manifest.json"
    if not outcome.success or not path.is_file():
        raise ManifestError(
            f"dbt parse failed for {paths.dbt_project_dir()}: {outcome.error or 'see the dbt log'}"
        )
    return ParsedManifest(path, _count_nodes(path), time.monotonic() - started)


def require_manifest() -> Path:
    """The manifest path; :class:`ManifestError` with the fix when it does not exist."""
    path = manifest_path()
    if not path.is_file():
        raise ManifestError(
            f"no dbt manifest at {path}: run `elt airflow parse-manifest` "
            "(DAG parsing never runs dbt)"
        )
    return path


def stale_files(path: Path | None = None, limit: int = 3) -> list[Path]:
    """Files of the dbt project changed after the manifest was written (at most ``limit``)."""
    path = path or manifest_path()
    built = path.stat().st_mtime
    project = paths.dbt_project_dir()
    candidates = [project / name for name in _PROJECT_FILES]
    for part in _PROJECT_PARTS:
        folder = project / part
        if folder.is_dir():
            candidates += [p for p in folder.rglob("*") if p.suffix in (".sql", ".yml", ".csv")]
    newer = [p for p in candidates if p.is_file() and p.stat().st_mtime > built]
    return sorted(newer)[:limit]


def _count_nodes(path: Path) -> int:
    import json

    data = json.loads(path.read_text())
    return len(data.get("nodes", {})) + len(data.get("unit_tests", {}))
