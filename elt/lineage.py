"""OpenLineage events for a run: source → raw table → audit model → published mart → export.

``emit_run_events(config, pipe, run_id, url)`` reads what the run did from ``elt_meta``
(steps, loads, dbt results, publish and export details), so any process can emit it — the
notify step calls it at the end of every run. Each step is a job ``<pipeline>.<step id>``
with a START and a COMPLETE/FAIL event whose parent is the pipeline's own run; inputs and
outputs name the datasets, with row counts. Transport (openlineage-python's own): a JSON
lines file per run in ``.elt/lineage`` by default, or ``lineage.url`` in ``pipelines.yml``
(Marquez, DataHub...). The portal draws its lineage graph from the same files.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from elt.config import Pipeline, ProjectConfig

import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from elt import paths, runs, settings

PRODUCER = "https://github.com/elt-platform/elt"  # who wrote the events (the spec wants a URI)
_RUN_NAMESPACE = uuid.UUID("6f1b1a52-9d0e-4c2a-8f5e-0e8b2b9b7a11")


def lineage_dir() -> Path:
    """Where the file transport writes: ``.elt/lineage``."""
    return paths.state_dir() / "lineage"


def _run_uuid(*parts: str) -> str:
    """A stable UUID for a run or step run (the spec wants UUIDs, our run ids are text)."""
    return str(uuid.uuid5(_RUN_NAMESPACE, "/".join(parts)))


def warehouse_namespace(url: str) -> str:
    """``postgres://host:port`` of the warehouse, without credentials (OpenLineage naming)."""
    parts = urlsplit(url)
    return f"postgres://{parts.hostname or 'localhost'}:{parts.port or 5432}"


def _dataset(namespace: str, name: str, rows: int | None = None, *, output: bool = False) -> Any:
    from openlineage.client.event_v2 import InputDataset, OutputDataset
    from openlineage.client.generated.output_statistics_output_dataset import (
        OutputStatisticsOutputDatasetFacet as Statistics,
    )

    if not output:
        return InputDataset(namespace=namespace, name=name)
    facets: dict[str, Any] = {"outputStatistics": Statistics(rowCount=rows)} if rows else {}
    return OutputDataset(namespace=namespace, name=name, outputFacets=facets)


def _event(
    kind: str,
    at: datetime,
    run_id: str,
    job: tuple[str, str],
    parent: tuple[str, str, str] | None = None,
    **io: list[Any],
) -> Any:
    from openlineage.client.event_v2 import Job, Run, RunEvent, RunState
    from openlineage.client.generated import parent_run

    facets: dict[str, Any] = {}
    if parent is not None:  # (namespace, pipeline, pipeline run uuid)
        facets["parent"] = parent_run.ParentRunFacet(
            run=parent_run.Run(runId=parent[2]),
            job=parent_run.Job(namespace=parent[0], name=parent[1]),
        )
    return RunEvent(
        eventType=RunState(kind),
        eventTime=at.astimezone(UTC).isoformat(),
        producer=PRODUCER,
        run=Run(runId=run_id, facets=facets),
        job=Job(namespace=job[0], name=job[1]),
        inputs=io.get("inputs", []),
        outputs=io.get("outputs", []),
    )


def _step_io(
    kind: str, detail: dict[str, Any], step_source: str | None, ctx: dict[str, Any]
) -> tuple[list[Any], list[Any]]:
    """Inputs and outputs of one step, from what it recorded."""
    wh, db = ctx["warehouse"], ctx["database"]
    if kind == "ingest" and step_source:
        source = ctx["sources"].get(step_source)
        kind_name = source.type if source else "source"
        rows = detail.get("rows") or {}
        inputs = [_dataset(f"{kind_name}://{step_source}", table) for table in rows]
        outputs = [
            _dataset(wh, f"{db}.raw_{step_source}.{table}", count, output=True)
            for table, count in rows.items()
        ]
        return inputs, outputs
    if kind == "transform":  # per-model events carry the io (see _model_events)
        return [], []
    if kind == "publish":
        tables = detail.get("tables") or {}
        inputs = [_dataset(wh, f"{db}.{ctx['audit']}.{t}") for t in tables]
        outputs = [
            _dataset(wh, f"{db}.{ctx['published']}.{t}", n, output=True) for t, n in tables.items()
        ]
        return inputs, outputs
    if kind == "export" and detail.get("rows"):
        lake, prefix = ctx["lake"]
        inputs = [_dataset(wh, f"{db}.{ctx['published']}.{m}") for m in detail["rows"]]
        outputs = [
            _dataset(lake, f"{prefix}/{m}".lstrip("/"), n, output=True)
            for m, n in detail["rows"].items()
        ]
        return inputs, outputs
    return [], []


def build_events(config: ProjectConfig | None, pipe: Pipeline, run_id: str, url: str) -> list[Any]:
    """The OpenLineage events of run ``run_id`` (openlineage-python RunEvents, spec 2-0-2)."""
    namespace = config.lineage.namespace if config is not None else "elt"
    with runs.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            f"select status, started_at, coalesce(finished_at, now()) from {runs.SCHEMA}.runs"
            " where run_id = %s",
            (run_id,),
        )
        row = cur.fetchone()
        if row is None:
            return []
        status, started, finished = row
        cur.execute(
            "select step_id, kind, status, started_at, finished_at, detail"
            f" from {runs.SCHEMA}.steps where run_id = %s order by started_at",
            (run_id,),
        )
        steps = cur.fetchall()
        cur.execute(
            f"select distinct 'raw_' || source || '.' || table_name from {runs.SCHEMA}.loads"
            " where run_id = %s order by 1",
            (run_id,),
        )
        raw_tables = [r[0] for r in cur.fetchall()]
        cur.execute(
            f"select unique_id from {runs.SCHEMA}.dbt_results where run_id = %s"
            " and resource_type = 'model' and status = 'success' order by 1",
            (run_id,),
        )
        models = [r[0].split(".")[-1] for r in cur.fetchall()]
    ctx = {
        "warehouse": warehouse_namespace(url),
        "database": urlsplit(url).path.lstrip("/") or "warehouse",
        "sources": config.sources if config is not None else {},
        "raw_tables": raw_tables,
        "models": models,
        "audit": settings.dbt_schema(),
        "published": settings.published_schema(),
        "lake": _lake(pipe),
        "manifest": dbt_manifest(config, pipe) if models else {},
    }
    pipeline_run = _run_uuid(run_id)
    job = (namespace, pipe.name)
    events = [_event("START", started, pipeline_run, job)]
    for step_id, kind, step_status, step_started, step_finished, detail in steps:
        step_run = _run_uuid(run_id, step_id)
        source = step_id.removeprefix("ingest_") if kind == "ingest" else None
        inputs, outputs = _step_io(kind, detail or {}, source, ctx)
        parent = (namespace, pipe.name, pipeline_run)
        step_job = (namespace, f"{pipe.name}.{step_id}")
        events.append(_event("START", step_started, step_run, step_job, parent))
        if kind == "transform":
            events += _model_events(ctx, step_job, parent, step_finished or step_started)
        end = "COMPLETE" if step_status == "succeeded" else "FAIL"
        events.append(
            _event(
                end,
                step_finished or step_started,
                step_run,
                step_job,
                parent,
                inputs=inputs,
                outputs=outputs,
            )
        )
    if status == "running":  # emitted by the run's last step, before the run is closed
        status = "failed" if any(step[2] == "failed" for step in steps) else "succeeded"
    end = {"succeeded": "COMPLETE", "failed": "FAIL"}.get(status, "OTHER")
    events.append(_event(end, finished, pipeline_run, job))
    return events


def dbt_manifest(config: ProjectConfig | None, pipe: Pipeline | None = None) -> dict[str, Any]:
    """dbt's manifest from the pipeline's last build (``DBT_TARGET_PATH`` when an orchestrator
    set it, else the project's target folder under ``.elt/dbt``); empty when there is none."""
    from elt import project as dbt_project

    try:
        project = dbt_project.of(config, pipe)
    except dbt_project.DbtProjectError:
        return {}
    target = os.environ.get("DBT_TARGET_PATH")
    folder = Path(target) if target else project.target_dir()
    manifest = (folder if folder.is_absolute() else project.path / folder) / "manifest.json"
    if not manifest.exists():
        return {}
    loaded: dict[str, Any] = json.loads(manifest.read_text(encoding="utf-8"))
    return loaded


def _model_events(
    ctx: dict[str, Any], job: tuple[str, str], parent: tuple[str, str, str], at: datetime
) -> list[Any]:
    """One COMPLETE event per model the run built, reading its parents (models, sources)."""
    manifest = ctx["manifest"]
    nodes, sources = manifest.get("nodes", {}), manifest.get("sources", {})
    wh, db = ctx["warehouse"], ctx["database"]

    def relation(unique_id: str) -> str | None:
        node = nodes.get(unique_id) or sources.get(unique_id)
        if node is None:
            return None
        return (
            f"{db}.{node['schema']}.{node.get('alias') or node.get('identifier') or node['name']}"
        )

    events = []
    for unique_id, node in nodes.items():
        if node.get("resource_type") != "model" or node["name"] not in ctx["models"]:
            continue
        parents = [relation(p) for p in node.get("depends_on", {}).get("nodes", [])]
        inputs = [_dataset(wh, name) for name in parents if name]
        output = _dataset(wh, relation(unique_id) or "", output=True)
        run = _run_uuid(parent[2], unique_id)
        model_job = (job[0], f"{job[1]}.{node['name']}")
        events.append(
            _event("COMPLETE", at, run, model_job, parent, inputs=inputs, outputs=[output])
        )
    return events


def _lake(pipe: Pipeline) -> tuple[str, str]:
    """The export target as (dataset namespace, path prefix): ``("s3://bucket", "prefix")``
    or ``("file", "/abs/folder")``, OpenLineage's naming for object stores and local files."""
    from elt.config_values import resolve_env

    if pipe.export is None:
        return "file", ""
    try:
        target = resolve_env(pipe.export.to) or ""
    except Exception:  # an unset variable: the export was skipped anyway
        return "file", ""
    parts = urlsplit(target)
    if parts.scheme in ("", "file"):
        return "file", str(Path(parts.path or target).resolve())
    return f"{parts.scheme}://{parts.netloc}", parts.path.strip("/")


def _client(config: ProjectConfig | None, run_id: str) -> Any:
    """An OpenLineage client: HTTP when ``lineage.url`` is set, else a JSON lines file."""
    from openlineage.client import OpenLineageClient
    from openlineage.client.transport.file import FileConfig, FileTransport
    from openlineage.client.transport.http import HttpConfig, HttpTransport

    from elt.config_values import resolve_env

    url = resolve_env(config.lineage.url) if config is not None and config.lineage.url else None
    if url:
        return OpenLineageClient(transport=HttpTransport(HttpConfig(url=url)))
    lineage_dir().mkdir(parents=True, exist_ok=True)
    target = lineage_dir() / f"{run_id}.jsonl"
    target.unlink(missing_ok=True)  # a rerun of the notify step rewrites the run's events
    return OpenLineageClient(transport=FileTransport(FileConfig(str(target), append=True)))


def emit_run_events(config: ProjectConfig | None, pipe: Pipeline, run_id: str, url: str) -> int:
    """Emit the run's OpenLineage events through the configured transport; returns how many."""
    events = build_events(config, pipe, run_id, url)
    client = _client(config, run_id)
    for event in events:
        client.emit(event)
    return len(events)


def as_dicts(events: list[Any]) -> list[dict[str, Any]]:
    """Events as the JSON objects the transports send."""
    from openlineage.client.serde import Serde

    return [Serde.to_dict(event) for event in events]


def read_events(run_id: str | None = None) -> list[dict[str, Any]]:
    """Events written by the file transport: one run's, or every run's (oldest file first)."""
    folder = lineage_dir()
    files = [folder / f"{run_id}.jsonl"] if run_id else sorted(folder.glob("*.jsonl"))
    events = []
    for path in files:
        if path.exists():
            events += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return events
