"""Which models a pipeline publishes: the one rule, used by the gate, publish and Airflow.

A model is published when all of these hold:

1. the pipeline's ``dbt.select`` / ``dbt.exclude`` select it (resolved by ``dbt ls``);
2. it is materialized as a ``table`` or ``incremental`` (views and ephemeral models are
   helpers: readers get tables);
3. it is marked: ``meta: {publish: true}`` or the tag ``publish``, or it sits in a folder
   called ``marts`` (anywhere under the model paths) — and is not opted out with
   ``meta: {publish: false}``.

Seeds, snapshots and helper tables outside ``marts`` are never published. A published model
keeps its relation name (``alias``) and is copied from the schema dbt built it in.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from elt.project import DbtProject

MARTS_FOLDER = "marts"
PUBLISH_TAG = "publish"
_TABLES = ("table", "incremental")
_LS_KEYS = ("unique_id", "name", "alias", "schema", "original_file_path", "tags", "config")


class MartSelectionError(RuntimeError):
    """The pipeline's selection cannot be resolved, or two marts would share a name."""


@dataclass(frozen=True)
class Mart:
    """A model to publish: its dbt id, its relation name and the schema dbt builds it in."""

    unique_id: str
    name: str
    schema: str


def is_published(config: Mapping[str, Any], tags: Iterable[str], file_path: str) -> bool:
    """The rule of this module for one model (``config`` as in dbt's manifest)."""
    if config.get("materialized") not in _TABLES:
        return False
    flag = (config.get("meta") or {}).get("publish")
    if flag is not None:
        return bool(flag)
    if PUBLISH_TAG in {*tags, *(config.get("tags") or ())}:
        return True
    return MARTS_FOLDER in PurePosixPath(file_path).parts[:-1]


def selected_marts(
    project: DbtProject,
    select: Sequence[str],
    exclude: Sequence[str] = (),
    *,
    target_path: Path | None = None,
) -> list[Mart]:
    """The models of ``project`` the selection resolves to that the rule publishes
    (``target_path``: where dbt may write its parse artifacts; default the project's)."""
    from elt import dbt

    args = ["--resource-type", "model", "--output", "json", "--output-keys", *_LS_KEYS]
    # `dbt ls` prints every node even when quiet: its console stays off, the result is kept
    args += ["--log-level", "none"]
    outcome = dbt.invoke(
        "ls",
        [*dbt.selection_args(select, exclude), *args],
        project=project,
        target_path=target_path,
    )
    if outcome.error or outcome.listed is None:
        raise MartSelectionError(
            f"could not resolve the dbt selection of {project.path}: {outcome.error}"
        )
    nodes = [json.loads(line) for line in outcome.listed]
    marts = [
        Mart(node["unique_id"], node["alias"] or node["name"], node["schema"])
        for node in nodes
        if is_published(node["config"], node.get("tags") or (), node["original_file_path"])
    ]
    _check_unique_names(marts)
    return sorted(marts, key=lambda mart: mart.name)


def built_marts(project: DbtProject, built: Iterable[str], *, target_path: Path) -> list[Mart]:
    """The models among ``built`` (unique ids a dbt invocation reported a result for) that
    the rule publishes, read from the manifest that invocation wrote to ``target_path``.

    The same list as :func:`selected_marts` of that invocation's selection (dbt reports a
    result for every selected node it ran or skipped), without a second invocation of dbt.
    """
    try:
        manifest = json.loads((target_path / "manifest.json").read_text())
    except (OSError, ValueError) as error:
        raise MartSelectionError(
            f"could not read the manifest dbt wrote for {project.path}: {error}"
        ) from None
    nodes = manifest.get("nodes", {})
    wanted = [nodes[uid] for uid in set(built) if uid in nodes]
    marts = [
        Mart(node["unique_id"], node.get("alias") or node["name"], node["schema"])
        for node in wanted
        if node.get("resource_type") == "model"
        and is_published(node["config"], node.get("tags") or (), node["original_file_path"])
    ]
    _check_unique_names(marts)
    return sorted(marts, key=lambda mart: mart.name)


def _check_unique_names(marts: list[Mart]) -> None:
    seen: dict[str, Mart] = {}
    for mart in marts:
        if mart.name in seen:
            raise MartSelectionError(
                f"two published models would both be named {mart.name!r}"
                f" ({seen[mart.name].unique_id}, {mart.unique_id}): give one an alias,"
                " or set meta: {publish: false} on one"
            )
        seen[mart.name] = mart


def not_built(marts: Iterable[Mart], succeeded: Iterable[str]) -> list[str]:
    """Names of the marts that have no successful result among ``succeeded`` unique ids."""
    done = set(succeeded)
    return sorted(mart.name for mart in marts if mart.unique_id not in done)
