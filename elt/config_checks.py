"""Checks across sections of ``pipelines.yml`` (names that must exist, cycles, pools, env).

They run on the raw YAML data, beside the pydantic validation, so a broken source does not
hide an unknown name in a pipeline: every problem is reported in one go.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from elt.config_problems import Problem, format_key_path
from elt.config_sources import DEFAULT_POOLS, parent_problems
from elt.config_values import did_you_mean, env_ref_name, is_env_ref
from elt.yaml_lines import KeyPath, YamlDocument


class _Report:
    """Collects problems for one document, looking up lines by key path."""

    def __init__(self, document: YamlDocument, file: str) -> None:
        self.document = document
        self.file = file
        self.problems: list[Problem] = []

    def add(self, path: KeyPath, message: str, hint: str = "") -> None:
        line = self.document.line_of(path)
        self.problems.append(Problem(self.file, line, format_key_path(path), message, hint))


def cross_checks(document: YamlDocument, file: str, *, check_env: bool) -> list[Problem]:
    """Every cross-section problem of the document (its data must be a mapping)."""
    report = _Report(document, file)
    data = document.data
    for path, line in document.duplicates:
        report.problems.append(
            Problem(file, line, format_key_path(path), "key given twice", "keep only one")
        )
    if "path" in data:
        report.add(("path",), "unknown key 'path'", "the file's own location is not configured")
    _check_names_from_keys(data, report)
    _check_pipeline_refs(data, report)
    _check_cycles(data, report)
    _check_pools(data, report)
    _check_resource_parents(data, report)
    _check_dbt_projects(data, report)
    if check_env:
        _check_env(data, report)
    return report.problems


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _strings(value: Any) -> Iterator[tuple[int, str]]:
    if isinstance(value, str):
        yield 0, value
    elif isinstance(value, list):
        yield from ((i, item) for i, item in enumerate(value) if isinstance(item, str))


def _check_names_from_keys(data: dict[str, Any], report: _Report) -> None:
    for section in ("sources", "pipelines"):
        for key, item in _mapping(data.get(section)).items():
            if "name" in _mapping(item):
                report.add(
                    (section, key, "name"),
                    "unknown key 'name'",
                    f"the name is the key under {section}: ('{key}'); remove 'name'",
                )


def _check_pipeline_refs(data: dict[str, Any], report: _Report) -> None:
    sources = _mapping(data.get("sources"))
    pipelines = _mapping(data.get("pipelines"))
    for name, pipeline in pipelines.items():
        spec = _mapping(pipeline)
        for index, source in _strings(spec.get("sources")):
            if source not in sources:
                report.add(
                    ("pipelines", name, "sources", index),
                    f"unknown source '{source}'",
                    did_you_mean(source, sources) or f"declared sources: {', '.join(sources)}",
                )
        for index, other in _strings(spec.get("depends_on")):
            if other not in pipelines:
                report.add(
                    ("pipelines", name, "depends_on", index),
                    f"unknown pipeline '{other}'",
                    did_you_mean(other, pipelines) or f"declared pipelines: {', '.join(pipelines)}",
                )


def _check_cycles(data: dict[str, Any], report: _Report) -> None:
    pipelines = _mapping(data.get("pipelines"))
    graph = {
        name: [
            other for _, other in _strings(_mapping(spec).get("depends_on")) if other in pipelines
        ]
        for name, spec in pipelines.items()
    }
    seen: set[frozenset[str]] = set()
    clean: set[str] = set()
    for start in graph:
        cycle = _find_cycle(graph, start, [start], clean)
        key = frozenset(cycle or ())
        if cycle and key not in seen:
            seen.add(key)
            report.add(
                ("pipelines", cycle[0], "depends_on"),
                f"pipelines depend on each other in a cycle: {' -> '.join(cycle)}",
                "remove one of these depends_on entries",
            )


def _find_cycle(
    graph: dict[str, list[str]], node: str, chain: list[str], clean: set[str]
) -> list[str] | None:
    """Depth-first search for a cycle reachable from ``node``; ``clean`` memoises nodes
    already known to reach none."""
    for other in graph[node]:
        if other in chain:
            return [*chain[chain.index(other) :], other]
        if other in clean:
            continue
        found = _find_cycle(graph, other, [*chain, other], clean)
        if found:
            return found
    clean.add(node)
    return None


def _check_pools(data: dict[str, Any], report: _Report) -> None:
    declared = {**DEFAULT_POOLS, **_mapping(data.get("pools"))}
    for section in ("sources", "pipelines"):
        for name, item in _mapping(data.get(section)).items():
            pool = _mapping(item).get("pool")
            if isinstance(pool, str) and pool not in declared:
                report.add(
                    (section, name, "pool"),
                    f"unknown pool '{pool}'",
                    did_you_mean(pool, declared) or f"declare it under pools: ({pool}: <slots>)",
                )
            slots = _mapping(item).get("pool_slots")
            size = declared.get(pool) if isinstance(pool, str) else None
            if isinstance(slots, int) and isinstance(size, int) and slots > size:
                report.add(
                    (section, name, "pool_slots"),
                    f"pool_slots {slots} is more than pool '{pool}' has ({size})",
                    f"lower pool_slots or raise pools: {pool}: {slots}",
                )


def _check_resource_parents(data: dict[str, Any], report: _Report) -> None:
    for name, source in _mapping(data.get("sources")).items():
        resources = _mapping(_mapping(source).get("resources"))
        parents = {key: _mapping(item).get("parent") for key, item in resources.items()}
        for resource, message, hint in parent_problems(parents):
            report.add(("sources", name, "resources", resource, "parent"), message, hint)


def _check_dbt_projects(data: dict[str, Any], report: _Report) -> None:
    """Every ``dbt.project_dir`` (top level and per pipeline) holds a ``dbt_project.yml``."""
    base = Path(report.file).parent
    where: list[tuple[KeyPath, Any]] = [(("dbt", "project_dir"), _mapping(data.get("dbt")))]
    for name, pipeline in _mapping(data.get("pipelines")).items():
        spec = _mapping(_mapping(pipeline).get("dbt"))
        where.append((("pipelines", name, "dbt", "project_dir"), spec))
    for path, spec in where:
        folder = spec.get("project_dir")
        if not isinstance(folder, str) or (base / folder / "dbt_project.yml").is_file():
            continue
        report.add(
            path,
            f"no dbt_project.yml in {folder}",
            "give the folder of your dbt project, relative to pipelines.yml",
        )


def _check_env(data: dict[str, Any], report: _Report) -> None:
    for path, value in _walk_strings(data, ()):
        if not is_env_ref(value):
            continue
        name, optional = env_ref_name(value)
        if name and not optional and name not in os.environ:
            report.add(
                path,
                f"environment variable {name} is not set",
                f"export {name}=... (or add it to .elt/env); write env:{name}? if it is optional",
            )


def _walk_strings(value: Any, path: KeyPath) -> Iterator[tuple[KeyPath, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk_strings(item, (*path, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk_strings(item, (*path, index))
