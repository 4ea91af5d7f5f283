"""The dbt part of a pipeline DAG: a Cosmos ``DbtTaskGroup`` in watcher mode.

Why watcher mode: per-task overhead, not dbt, decides orchestrated run time. In watcher mode
one task (the producer) runs ``dbt build`` once for the whole selection, as ``elt run`` does;
every model, seed and snapshot still gets its own task (and each model a ``test`` task for
its tests) that reports the node's result. The graph is rendered by Cosmos from the pre-built
manifest: parsing the DAG file never runs dbt.

dbt runs in a child process of the producer (``ELT_AIRFLOW_DBT_INVOCATION=dbt_runner`` runs
it in-process instead): in-process, Cosmos turns every one of dbt's events (debug ones
included) into JSON inside dbt's own threads, which made the build 4x slower here (33 s of
node execution against 8 s as a child process, same project, same machine).

Node tasks are ours (``RenderConfig.node_converters`` → :class:`DbtNodeReport`): Cosmos
still decides which nodes, task groups, ids and dependencies there are, but its watcher
sensors cost 1–3 ms each to build (three signature inspections per instance, a deep class
chain): 400 of them were 1.3–1.6 s of a 1.8–2.1 s parse (200 models, busy machine), and
each reads several XComs through the API when it runs. Ours are built like an
``EmptyOperator`` and read the node's result from ``elt_meta.dbt_results``, which the
producer's callback wrote.

What we change after Cosmos built the group, and why:
* the producer logs dbt's lines but pushes nothing to XCom: Cosmos' parser pushes, per node,
  its status, its events and a model's compiled SQL for its watcher sensors (≈2,000 XComs
  through the task API for 200 models with two tests each, ≈19 s of a 54 s producer on
  this machine); our node tasks read ``elt_meta.dbt_results`` and never pull them;
* the root node tasks wait for the producer (trigger rule ``all_done``) instead of polling
  beside it: the result is the same, and no node task holds a slot while dbt runs;
* no Airflow retries on dbt tasks: a failed data test is a fact about the data (retrying it
  re-runs the same query on the same rows). To retry a node, clear its task *with
  downstream*: the model's task re-runs the model (``dbt run``), then its ``test`` task
  re-runs the model's tests (``dbt test``) — a retried model is never left untested. Results
  of such re-runs replace the node's rows in ``elt_meta.dbt_results``;
* the producer is a :class:`~orchestration.airflow.producer.RebuildingProducer`: a cleared
  DAG run (a backfill ``--rerun``) builds once again, where Cosmos' producer would skip, and
  the node tasks report that build instead of re-running their nodes one by one.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from elt.config import Pipeline
from elt.marts import is_published
from elt.project import TARGET, DbtProject
from orchestration.airflow import compat, manifest, tasks
from orchestration.airflow.node_report import DbtNodeReport, node_converter

GROUP_ID = tasks.GROUP_DBT
PRODUCER_ID = f"{GROUP_ID}.{compat.PRODUCER_TASK}"
NODE_TYPES = ("model", "seed", "snapshot", "test")
# dbt in a child process (default) or in the task's process: see the module docstring
SUBPROCESS = os.environ.get("ELT_AIRFLOW_DBT_INVOCATION", "subprocess") != "dbt_runner"

_GRAPH_OPERATORS = re.compile(r"(@|\d*\+)?([^+@]+?)(\+\d*)?")
log = logging.getLogger(__name__)


class _NoUnitTestWarning(logging.Filter):
    """Cosmos warns for every dbt unit test it cannot render; they run in the producer."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "UNIT_TEST" not in record.getMessage()


@dataclass(frozen=True)
class DbtGroup:
    """The Cosmos task group and what the rest of the DAG needs to know about it."""

    group: Any
    producer: Any
    expected_nodes: tuple[str, ...]  # unique ids the gate expects a result for
    marts: tuple[str, ...]  # models published by write-audit-publish (elt.marts)


def build_dbt_group(
    pipe: Pipeline,
    project: DbtProject,
    *,
    pool: str | None,
    pool_slots: int = 1,
    timeout: timedelta | None,
) -> DbtGroup:
    """Create the ``dbt`` task group of ``pipe`` (building ``project``) in the DAG."""
    from cosmos import (
        DbtResourceType,
        DbtTaskGroup,
        ExecutionConfig,
        ExecutionMode,
        InvocationMode,
        LoadMode,
        ProfileConfig,
        ProjectConfig,
        RenderConfig,
        TestBehavior,
    )

    from orchestration.airflow.producer import rebuild_on_clear

    logging.getLogger("cosmos.airflow.graph").addFilter(_NoUnitTestWarning())
    project_dir = project.path
    group = DbtTaskGroup(
        group_id=GROUP_ID,
        project_config=ProjectConfig(
            dbt_project_path=project_dir,
            manifest_path=manifest.require_manifest(project),
            install_dbt_deps=False,
            partial_parse=True,
        ),
        # the platform's generated profile, under the project's own profile name
        profile_config=ProfileConfig(
            profile_name=project.profile,
            target_name=TARGET,
            profiles_yml_filepath=project.profiles_file(),
        ),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            select=cosmos_selectors(pipe.dbt.select, project_dir),
            exclude=cosmos_selectors(pipe.dbt.exclude, project_dir),
            test_behavior=TestBehavior.AFTER_EACH,
            enable_owner_inheritance=False,
            node_converters={
                DbtResourceType(kind): node_converter(kind, pipe.dbt.full_refresh)
                for kind in NODE_TYPES
            },
            node_conversion_by_task_group=False,  # Cosmos keeps a model's run/test group
        ),
        execution_config=ExecutionConfig(
            execution_mode=ExecutionMode.WATCHER,
            invocation_mode=InvocationMode.SUBPROCESS if SUBPROCESS else InvocationMode.DBT_RUNNER,
            dbt_executable_path=str(Path(sys.executable).with_name("dbt")),
        ),
        operator_args=_operator_args(pipe),
    )
    producer = group.dag.get_task(PRODUCER_ID)
    rebuild_on_clear(producer)
    _wire(group, producer, pool=pool, pool_slots=pool_slots, timeout=timeout)
    _attach_tests(group, compat.tests_per_model(group))
    nodes = compat.rendered_nodes(group)
    return DbtGroup(
        group=group,
        producer=producer,
        expected_nodes=_expected(nodes),
        marts=_marts(nodes),
    )


def cosmos_selectors(selectors: list[str], project_dir: Path) -> list[str]:
    """dbt selectors in a form Cosmos' manifest selector understands.

    dbt reads a bare ``marts`` as "every node under a folder called marts"; Cosmos only knows
    node names there, so a bare folder of the project becomes ``path:<folder>`` (graph
    operators kept). The producer runs ``dbt build`` with the same, equivalent, selectors.
    """
    return [_cosmos_selector(item, project_dir) for item in selectors]


def _cosmos_selector(item: str, project_dir: Path) -> str:
    if "," in item:  # intersection: translate each part
        return ",".join(_cosmos_selector(part, project_dir) for part in item.split(","))
    match = _GRAPH_OPERATORS.fullmatch(item)
    if match is None:
        return item
    before, core, after = (part or "" for part in match.groups())
    if ":" in core or core.startswith("config."):
        return item
    for folder in ("models", "seeds", "snapshots"):
        if (project_dir / folder / core).is_dir():
            return f"{before}path:{folder}/{core}{after}"
    return item


def _operator_args(pipe: Pipeline) -> dict[str, Any]:
    return {
        "install_deps": False,
        "append_env": True,  # dbt in a subprocess needs the task's PG* variables
        "emit_datasets": False,  # published marts are the assets, not audit tables
        "full_refresh": pipe.dbt.full_refresh,
        # no secret here: task arguments are rendered in the UI
        "env": {"ELT_DBT_THREADS": str(pipe.dbt.threads)},
        "callback": tasks.record_dbt_results,
        "pre_execute": tasks.prepare_task,
    }


def _wire(
    group: Any, producer: Any, *, pool: str | None, pool_slots: int, timeout: timedelta | None
) -> None:
    """Roots wait for the producer; no retries; the producer draws from the dbt pool and
    only logs dbt's lines."""
    producer.retries = 0
    setattr(producer, compat.PRODUCER_LOG_PARSER, _log_parser)
    producer.execution_timeout = timeout
    if pool:
        producer.pool = pool
        producer.pool_slots = pool_slots
    members = {task.task_id: task for task in group.dag.tasks if task.task_id.startswith(GROUP_ID)}
    for task_id, task in members.items():
        task.retries = 0
        if task is producer or task_id.endswith("_done"):
            continue
        if not task.upstream_task_ids & set(members):
            producer >> task
            task.trigger_rule = "all_done"


def _log_parser() -> Callable[[str, Any], None]:
    return log_dbt_line


def log_dbt_line(line: str, _extra: Any = None) -> None:
    """Log one line of dbt's JSON log (or any other output line) in the producer's log."""
    try:
        event = json.loads(line)
    except ValueError:
        event = None
    if not isinstance(event, dict):
        if line:
            log.info("%s", line)
        return
    info = event.get("info") or {}
    if info.get("msg"):
        level = getattr(logging, str(info.get("level", "info")).upper(), logging.INFO)
        log.log(level if isinstance(level, int) else logging.INFO, "%s", info["msg"])


def _attach_tests(group: Any, tests_per_model: dict[str, list[str]]) -> None:
    """Tell each model's ``test`` task which tests it reports (Cosmos knows them per model)."""
    for task in group.dag.tasks:
        if isinstance(task, DbtNodeReport) and task.command == "test" and not task.tests:
            task.tests = tuple(sorted(tests_per_model.get(task.model_unique_id, ())))


def _expected(nodes: dict[str, Any]) -> tuple[str, ...]:
    return tuple(
        sorted(
            uid
            for uid, node in nodes.items()
            if node.resource_type.value in NODE_TYPES
            and node.config.get("materialized") != "ephemeral"
        )
    )


def _marts(nodes: dict[str, Any]) -> tuple[str, ...]:
    """Models the pipeline publishes (the rule of ``elt.marts``), by relation name."""
    return tuple(
        sorted(
            node.config.get("alias") or uid.split(".")[-1]
            for uid, node in nodes.items()
            if node.resource_type.value == "model"
            and is_published(node.config, node.tags, str(node.original_file_path))
        )
    )
