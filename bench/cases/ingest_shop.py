"""The shop's five small tables, first run: our ingest alone, and the ``ingest_shop`` step as
``elt run`` runs it (the ingest, its load records, the raw-stage quality checks)."""

from __future__ import annotations

import time

from bench.cases.common import ingest_configured


def ingest(params: dict) -> dict:
    """``ingestion.runner.ingest`` of the shop source (a first run: the harness dropped its
    state and raw schema before)."""
    return ingest_configured(params, full_refresh=False)


def step(params: dict) -> dict:
    """The pipeline's ``ingest_shop`` step in a run of its own (opened and closed as ``elt
    run`` does, no other step); ``work_s`` is the step, as ``elt_meta.steps`` times it."""
    from elt import runs, settings
    from elt.config import load
    from elt.lifecycle import Run

    config = load(params["config"])
    pipe = config.pipeline(params["pipeline"])
    run = Run.create(
        config, pipe, runs.new_run_id(pipe.name), settings.warehouse_url(), orchestrator="elt"
    )
    step = next(s for s in run.plan.steps if s.id == params["step"])
    run.open()
    try:
        started = time.perf_counter()
        succeeded = run.run_step(step)
        work = time.perf_counter() - started
    finally:
        run.finish()
    if not succeeded:
        raise RuntimeError(f"step {step.id} failed: {run.result.error}")
    return {"work_s": work, "rows": sum(load.rows for load in run.result.loads)}


VARIANTS = {"ingest": ingest, "step": step}
