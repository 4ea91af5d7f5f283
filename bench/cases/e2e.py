"""End to end: ``elt run`` (``elt.runner.run_pipeline``) of the demo pipeline."""

from __future__ import annotations

import time


def run(params: dict) -> dict:
    """One run of ``params["pipeline"]``; fails when the run did not succeed."""
    from elt.config import load
    from elt.runner import run_pipeline

    config = load(params["config"])
    started = time.perf_counter()
    result = run_pipeline(config, params["pipeline"], full_refresh=False)
    work = time.perf_counter() - started
    if result.status != "succeeded":
        raise RuntimeError(f"elt run {params['pipeline']} {result.status}: {result.error}")
    steps = {
        record.step_id: round((record.finished_at - record.started_at).total_seconds(), 3)
        for record in result.steps
    }
    return {
        "work_s": work,
        "rows": sum(load.rows for load in result.loads),
        "steps_s": steps,
        "step_peak_rss_mb": max((r.peak_rss_mb or 0) for r in result.steps) if result.steps else 0,
    }


def parse(params: dict) -> dict:
    """``dbt parse`` (a setup step): the first round then finds dbt's partial parse warm, as
    every run of a pipeline that runs daily does."""
    from elt import dbt

    outcome = dbt.invoke("parse", quiet=True)
    if not outcome.success:
        raise RuntimeError(f"dbt parse failed: {outcome.error}")
    return {}


VARIANTS = {"run": run, "parse": parse}
