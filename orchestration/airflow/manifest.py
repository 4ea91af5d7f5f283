"""The dbt manifests Cosmos renders the DAGs from, produced by ``dbt parse`` ahead of time.

DAG parsing never runs dbt: ``elt airflow parse-manifest`` (and ``elt airflow up``/``test``)
write one manifest per dbt project the pipelines use, under that project's state folder
(``.elt/dbt/<name>-<hash of its path>/manifest/``), with a stamp beside it: the project's
folder and name and a content hash of each of its files (``dbt_project.yml`` and its vars
included). The DAG file only reads them:

* a manifest stamped with another project (or whose dbt metadata names another project) is
  refused — an import error that says which project it came from and what to run;
* a manifest whose project files changed since (by content, not file dates: a checkout or a
  copy changes dates, not content) still loads, and :func:`stale_files` names the files.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from elt import project as dbt_project
from elt.project import DbtProject

# what dbt reads from a project; its own outputs and installed packages are not the project
_SUFFIXES = {".sql", ".yml", ".yaml", ".csv", ".md", ".py", ".jinja", ".j2"}
_SKIPPED_DIRS = {"target", "dbt_packages", "logs", "dbt_modules", "node_modules", "__pycache__"}


class ManifestError(RuntimeError):
    """The manifest is missing, of another project, or dbt could not produce it."""


@dataclass(frozen=True)
class ParsedManifest:
    """What :func:`parse_manifest` wrote."""

    path: Path
    nodes: int
    duration_s: float
    project: str = ""


def target_dir(project: DbtProject | None = None) -> Path:
    """dbt's target folder for the orchestrators' manifest of ``project``."""
    return (project or dbt_project.of()).home() / "manifest"


def manifest_path(project: DbtProject | None = None) -> Path:
    """Where the manifest of ``project`` (default: the top-level one) is read from:
    ``ELT_DBT_MANIFEST`` when set (the one built into the image, or the one ``elt airflow up``
    built for its Celery workers, whose own state folders are empty; its stamp sits beside
    it), else the project's own under :func:`target_dir`."""
    override = os.environ.get("ELT_DBT_MANIFEST")
    return Path(override) if override else target_dir(project) / "manifest.json"


def _stamp_path(project: DbtProject) -> Path:
    return manifest_path(project).parent / "elt_stamp.json"


def fingerprint(project: DbtProject) -> dict[str, str]:
    """Content hash of every file dbt reads from the project, by path relative to it."""
    hashes: dict[str, str] = {}
    for path in sorted(_project_files(project.path)):
        hashes[path.relative_to(project.path).as_posix()] = hashlib.sha256(
            path.read_bytes()
        ).hexdigest()
    return hashes


def _project_files(root: Path) -> Iterable[Path]:
    for path in root.iterdir():
        if path.name.startswith(".") or path.name in _SKIPPED_DIRS:
            continue
        if path.is_dir():
            yield from _project_files(path)
        elif path.suffix in _SUFFIXES:
            yield path


def parse_manifest(project: DbtProject | None = None) -> ParsedManifest:
    """Run ``dbt parse`` for ``project`` into :func:`target_dir` and stamp it."""
    from elt import dbt

    project = project or dbt_project.of()
    started = time.monotonic()
    files = fingerprint(project)
    outcome = dbt.invoke("parse", project=project, target_path=target_dir(project))
    path = target_dir(project) / "manifest.json"
    if not outcome.success or not path.is_file():
        raise ManifestError(
            f"dbt parse failed for {project.path}: {outcome.error or 'see the dbt log'}"
        )
    stamp = {"project_dir": str(project.path), "project_name": project.name, "files": files}
    (path.parent / "elt_stamp.json").write_text(json.dumps(stamp, indent=1))
    return ParsedManifest(path, _count_nodes(path), time.monotonic() - started, project.name)


def projects_of(config) -> list[DbtProject]:
    """The distinct dbt projects the pipelines of ``config`` build."""
    found = {
        dbt_project.of(config, pipe).path: dbt_project.of(config, pipe)
        for pipe in config.pipelines.values()
    }
    return list(found.values()) or [dbt_project.of(config)]


def parse_stale(config) -> list[ParsedManifest]:
    """Parse the manifest of every project of ``config`` that is missing or stale."""
    parsed = []
    for project in projects_of(config):
        try:
            require_manifest(project)
            fresh = not stale_files(project)
        except ManifestError:
            fresh = False
        if not fresh:
            parsed.append(parse_manifest(project))
    return parsed


def require_manifest(project: DbtProject | None = None) -> Path:
    """The manifest of ``project``; :class:`ManifestError` with the fix when it does not
    exist or was built from another dbt project."""
    project = project or dbt_project.of()
    path = manifest_path(project)
    fix = "run `elt airflow parse-manifest` (DAG parsing never runs dbt)"
    if not path.is_file():
        raise ManifestError(f"no dbt manifest at {path} for dbt project {project.path}: {fix}")
    stamp = _read_stamp(project)
    built_from = (stamp.get("project_name"), stamp.get("project_dir"))
    manifest_name = _manifest_project_name(path)
    if not stamp and os.environ.get("ELT_DBT_MANIFEST") and manifest_name == project.name:
        # named by the operator (the image's own `dbt parse`): dbt's metadata says which
        # project it is, and content staleness is the image build's business
        return path
    if not stamp:
        raise ManifestError(
            f"the dbt manifest {path} has no stamp saying which project it is: {fix}"
        )
    if built_from != (project.name, str(project.path)):
        other = f"{built_from[0]!r} at {built_from[1] or 'an unknown folder'}"
    elif manifest_name != project.name:
        other = f"{manifest_name!r}"
    else:
        return path
    raise ManifestError(
        f"the dbt manifest {path} was built from another dbt project ({other}),"
        f" not {project.name!r} at {project.path}: {fix}"
    )


def _read_stamp(project: DbtProject) -> dict:
    try:
        return json.loads(_stamp_path(project).read_text())
    except (OSError, ValueError):
        return {}


def _manifest_project_name(path: Path) -> str | None:
    # the metadata block comes first in dbt's manifest: no need to load a large file whole
    with path.open() as handle:
        head = handle.read(16384)
    marker = '"project_name": "'
    start = head.find(marker)
    if start < 0:
        return None
    start += len(marker)
    return head[start : head.find('"', start)]


def stale_files(project: DbtProject | None = None, limit: int = 3) -> list[str]:
    """Project files (relative paths) whose content changed, appeared or went away since
    the manifest was parsed (at most ``limit``)."""
    project = project or dbt_project.of()
    recorded = _read_stamp(project).get("files", {})
    current = fingerprint(project)
    changed = {
        name for name in current.keys() | recorded.keys() if current.get(name) != recorded.get(name)
    }
    return sorted(changed)[:limit]


def _count_nodes(path: Path) -> int:
    data = json.loads(path.read_text())
    return len(data.get("nodes", {})) + len(data.get("unit_tests", {}))
