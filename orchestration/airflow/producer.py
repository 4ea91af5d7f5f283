"""The dbt producer of a pipeline DAG: Cosmos' watcher producer, which builds again when its
DAG run is cleared.

Cosmos' producer skips itself on any try after the first ("does not support Airflow
retries"). A retry is not what reaches it here (dbt tasks have no retries): a *clear* is —
``elt airflow backfill --rerun``, the UI's "Clear" of a DAG run, or clearing the producer
with downstream. Then the run must build again, once, as its first try did; the node tasks
report that build (:mod:`orchestration.airflow.node_tasks`).

Every try holds the run as any step does (:func:`tasks.attached_run`: the pipeline's lease
taken and renewed while dbt builds, a finished run reopened), and starts by forgetting the
run's earlier dbt results: the new build's are the only ones the node tasks and the gate may
judge. A build that dies before dbt wrote its results is recorded as failed all the same,
so that the node tasks know it was this clear's (and fail for want of a result).
"""

from __future__ import annotations

import logging
from typing import Any

from cosmos.operators.watcher import DbtProducerWatcherOperator

from elt.redact import redact
from orchestration.airflow import compat, tasks

log = logging.getLogger(__name__)


class RebuildingProducer(DbtProducerWatcherOperator):
    """Cosmos' producer, holding the run while it builds, and building again when cleared."""

    def execute(self, context: Any, **kwargs: Any) -> Any:
        """``dbt build`` of the pipeline's selection, on every try."""
        ti = context["ti"]
        with tasks.attached_run(ti.dag_id, context) as run:
            tasks.forget_dbt_results(context)
            try:
                if ti.try_number == 1:
                    return super().execute(context, **kwargs)
                log.info("the DAG run was cleared (try %d): one dbt build again", ti.try_number)
                return compat.build_without_watcher_checks(self, context)
            except BaseException as exc:  # a timeout too (AirflowTaskTimeout)
                _record_if_unrecorded(run, context, exc)
                raise


def _record_if_unrecorded(run: Any, context: Any, exc: BaseException) -> None:
    """dbt left no results for this clear: record the build as failed, so that the node
    tasks report (a missing result) instead of re-running their nodes one by one."""
    try:
        if tasks.build_clears(run.url, run.run_id) != tasks.clears(context):
            tasks.record_dbt_invocation(context, [], error=f"dbt build failed: {exc}")
    except Exception as error:  # the build's own error is the one to raise
        log.warning("could not record the failed dbt build: %s", redact(str(error)))


def rebuild_on_clear(producer: Any) -> None:
    """Turn the producer Cosmos created into a :class:`RebuildingProducer` (Cosmos has no
    option to pick the producer's class; ours adds behaviour only, no state)."""
    if type(producer) is not DbtProducerWatcherOperator:
        raise TypeError(f"unexpected Cosmos producer {type(producer).__name__}")
    producer.__class__ = RebuildingProducer
