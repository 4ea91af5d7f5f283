"""`elt run`: walk a pipeline's plan in-process through the shared run lifecycle.

The same steps as the Airflow and Prefect wrappers, without an orchestrator: ingest every
source, build and test with dbt in the audit schema, gate, publish, export, notify, each with
its retries, retry delay and timeout (:meth:`elt.lifecycle.Run.run_step`). The run holds the
pipeline's lease (:mod:`elt.lease`) from start to end, so no other run of the pipeline — by
`elt run`, Airflow or Prefect — overlaps it. Whatever ends the process (an error, SIGTERM,
Ctrl-C, a lost warehouse) the run is recorded, notified and its lease released.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from elt import runs, settings
from elt.config import ProjectConfig
from elt.lease import PipelineBusyError
from elt.lifecycle import Run, measure_step
from elt.spec import Step
from elt.steps import RunResult

__all__ = ["PipelineBusyError", "measure_step", "run_pipeline", "upstream_pipelines"]

log = logging.getLogger(__name__)

Listener = Callable[[str, Step, runs.StepRecord | None], None]
ORCHESTRATOR = "elt"


def _walk(run: Run, listener: Listener | None) -> None:
    """Each step in plan order once its upstream steps are done; a step whose upstream
    failed is skipped, except ``all_done`` steps (notify), which report whatever happened."""
    done: dict[str, bool] = {}
    for step in run.plan.steps:
        upstream_ok = all(done.get(d, False) for d in step.depends_on)
        if not upstream_ok and step.trigger != "all_done":
            done[step.id] = False
            continue
        if listener:
            listener("start", step, None)
        done[step.id] = run.run_step(step)
        if listener:
            record = next((s for s in run.result.steps if s.step_id == step.id), None)
            listener("end", step, record)


def run_pipeline(
    config: ProjectConfig,
    name: str,
    *,
    full_refresh: bool = False,
    listener: Listener | None = None,
    progress: Callable[[str], None] | None = None,
    orchestrator: str = ORCHESTRATOR,
) -> RunResult:
    """Run pipeline ``name`` end to end; never raises for a failed step (see ``status``).

    Raises :class:`PipelineBusyError` when another live run holds the pipeline.
    """
    pipe = config.pipeline(name)
    url = settings.warehouse_url()
    run = Run.create(
        config,
        pipe,
        runs.new_run_id(pipe.name),
        url,
        orchestrator=orchestrator,
        full_refresh=full_refresh,
        progress=progress,
    )
    run.open()
    try:
        _walk(run, listener)
    except BaseException as exc:  # SIGTERM, Ctrl-C, a bug: the run must not stay "running"
        run.interrupted(exc)
        raise
    finally:
        run.finish()
    return run.result


def upstream_pipelines(config: ProjectConfig, name: str) -> list[str]:
    """The pipelines ``name`` depends on (``depends_on``, transitively), upstream first."""
    ordered: list[str] = []

    def visit(pipeline: str, path: tuple[str, ...]) -> None:
        for upstream in config.pipeline(pipeline).depends_on:
            if upstream in path:
                raise ValueError(f"depends_on cycle: {' → '.join((*path, upstream))}")
            visit(upstream, (*path, upstream))
            if upstream not in ordered:
                ordered.append(upstream)

    visit(name, (name,))
    return ordered
