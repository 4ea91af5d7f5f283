"""Incremental after a 1% change vs full refresh, for ingestion and for ``dbt build``.

The 1% change itself is made by the harness before the incremental variant starts, so it
is not timed. ``sources`` (not measured) ingests the demo sources incrementally, which is
how the raw data gets the change before an incremental dbt build.
"""

from __future__ import annotations

import json
import time

from bench.cases.common import ingest_configured


def ingest_full(params: dict) -> dict:
    """Our ingestion with ``full_refresh=True`` (drops tables and cursors, loads all)."""
    import ingestion.runner  # noqa: F401 - imported before the clock starts

    return ingest_configured(params, full_refresh=True)


def ingest_incremental(params: dict) -> dict:
    """Our ingestion continuing from the stored cursor (merge on the primary key)."""
    import ingestion.runner  # noqa: F401 - imported before the clock starts

    return ingest_configured(params, full_refresh=False)


def sources(params: dict) -> dict:
    """Ingest every source of the pipeline, incrementally (a setup step)."""
    from elt import settings
    from elt.config import load
    from ingestion.runner import ingest

    config = load(params["config"])
    pipe = config.pipeline(params["pipeline"])
    rows = 0
    for name in pipe.sources:
        result = ingest(
            config.sources[name],
            full_refresh=params.get("full_refresh", False),
            destination_url=settings.warehouse_url(),
        )
        rows += sum(result.rows.values())
    return {"rows": rows}


def _dbt_build(params: dict, *, full_refresh: bool) -> dict:
    from elt import dbt
    from elt.config import load

    pipe = load(params["config"]).pipeline(params["pipeline"])
    args = [*dbt.selection_args(pipe.dbt.select, pipe.dbt.exclude)]
    args += ["--threads", str(pipe.dbt.threads), "--vars", json.dumps(params["vars"])]
    if full_refresh:
        args.append("--full-refresh")
    started = time.perf_counter()
    outcome = dbt.invoke("build", args, quiet=True)
    work = time.perf_counter() - started
    if not outcome.success:
        failed = ", ".join(r.unique_id for r in outcome.failed[:5])
        raise RuntimeError(f"dbt build failed: {outcome.error or failed}")
    return {
        "work_s": work,
        "nodes": len(outcome.results),
        "models": outcome.count("model"),
        "rows_affected": {
            r.unique_id.split(".")[-1]: r.rows_affected
            for r in outcome.results
            if r.resource_type == "model" and r.rows_affected is not None
        },
    }


def dbt_full(params: dict) -> dict:
    """``dbt build --full-refresh`` of the pipeline's selection."""
    return _dbt_build(params, full_refresh=True)


def dbt_incremental(params: dict) -> dict:
    """``dbt build`` of the pipeline's selection (incremental models merge new loads)."""
    return _dbt_build(params, full_refresh=False)


VARIANTS = {
    "ingest_full": ingest_full,
    "ingest_incremental": ingest_incremental,
    "sources": sources,
    "dbt_full": dbt_full,
    "dbt_incremental": dbt_incremental,
}
