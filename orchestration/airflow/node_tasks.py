"""What a dbt node's task does (:class:`~orchestration.airflow.node_report.DbtNodeReport`).

First try: the producer's ``dbt build`` is done (node tasks start after it) and its callback
wrote every node's result to ``elt_meta.dbt_results``; the task reads its node's rows (a
model's ``test`` task: the model's tests) and succeeds, fails with dbt's message, or skips
as dbt did. No result: skipped when dbt never ran (the producer could not start), failed
otherwise (a stale manifest, or a build that died).

Cleared (try 2 and later), it depends on what else was cleared (:func:`after_clear`):

* the whole DAG run (``elt airflow backfill --rerun``, the UI's "Clear" of a run) or the
  producer with downstream: the producer built again for this clear (its ``dbt_build`` step
  records the DAG run's clear count) and the task reports that build, as on a first try. One
  dbt build per run, never one per node beside it (concurrent dbt invocations collide on the
  stored-failures relations);
* the node alone, or with its downstream: the producer's build is older than the clear, so
  the task re-runs its node in-process, as ``elt run`` runs dbt — ``dbt run|seed|snapshot
  --select <node>``, or ``dbt test --select <model>`` for a model's tests — records the
  results (they replace the node's rows) and judges them the same way;
* cleared while dbt never ran in this run (the producer skipped, or upstream failed): skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from elt import runs, settings
from elt.redact import redact
from elt.steps import StepError, node_name
from orchestration.airflow import run_state, tasks

log = logging.getLogger(__name__)
_FAILED = {"error", "fail", "runtime error"}
_NO_DBT = {"upstream_failed", "skipped", "removed"}
_PRODUCER = tasks.PRODUCER_TASKS[0]


REPORT, RERUN, SKIP = "report", "rerun", "skip"


def after_clear(run_clears: int, build_clears: int | None, producer_state: str | None) -> str:
    """What a cleared node task (try 2+) does: ``report`` the producer's build when it was
    built after the DAG run's latest clear (``build_clears``, the clear count its record
    carries, is the run's), else ``skip`` when dbt did not run in this run, else ``rerun``
    its node: it was cleared without the producer."""
    if build_clears is not None and build_clears >= run_clears:
        return REPORT
    if producer_state in _NO_DBT:
        return SKIP
    return RERUN


def report_or_rerun(task: Any, context: dict[str, Any]) -> None:
    """Judge the node's result from the build, or re-run the node when it was cleared alone."""
    from airflow.sdk.exceptions import AirflowSkipException

    url = settings.warehouse_url()
    run_id = run_state.run_id_from_context(context["ti"].dag_id, context)
    action = REPORT
    if context["ti"].try_number > 1:
        state = _producer_state(context)
        action = after_clear(tasks.clears(context), tasks.build_clears(url, run_id), state)
        if action == SKIP:
            raise AirflowSkipException(f"dbt did not run in this run ({_PRODUCER} is {state})")
    if action == RERUN:
        # the re-run works for the run: it holds (and reopens) the run as any step does
        with tasks.attached_run(context["ti"].dag_id, context):
            results = _rerun(task, context)
    else:
        wanted = task.tests if task.command == "test" else (task.model_unique_id,)
        results = run_state.build_results(url, run_id, wanted)
        _require_all(wanted, results, context)
    judge(results)


def _producer_state(context: dict[str, Any]) -> str | None:
    return tasks.run_states(context, task_ids=[_PRODUCER]).get(_PRODUCER)


def _require_all(
    wanted: Iterable[str], results: list[runs.DbtResultRecord], context: dict[str, Any]
) -> None:
    missing = sorted(set(wanted) - {r.unique_id for r in results})
    if not missing:
        return
    producer, state = _PRODUCER, _producer_state(context)
    if state in _NO_DBT:
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException(f"dbt did not run ({producer} is {state})")
    names = ", ".join(node_name(uid) for uid in missing[:10])
    raise StepError(
        f"no result for {names} in this run's dbt build ({producer} is {state}; see its log)."
        " If the dbt project changed, run `elt airflow parse-manifest`."
    )


def judge(results: list[runs.DbtResultRecord]) -> None:
    """Log each result; raise when a node failed (naming it, with dbt's message), skip when
    dbt skipped one."""
    for result in results:
        log.info(
            "%s %s: %s (%.2f s)%s",
            result.resource_type,
            node_name(result.unique_id),
            result.status,
            result.execution_time_s or 0.0,
            f" — {result.message}" if result.message else "",
        )
    failed = [r for r in results if r.status in _FAILED]
    if failed:
        lines = "; ".join(f"{node_name(r.unique_id)}: {r.message or r.status}" for r in failed)
        raise StepError(redact(f"{len(failed)} dbt node(s) failed: {lines}"))
    skipped = [node_name(r.unique_id) for r in results if r.status == "skipped"]
    if skipped:
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException(f"skipped by dbt: {', '.join(skipped)}")


def _rerun(task: Any, context: dict[str, Any]) -> list:
    from elt import config as elt_config
    from elt import dbt
    from elt import project as dbt_project

    args = ["--select", node_name(task.model_unique_id)]
    if task.full_refresh and task.command != "test":
        args.append("--full-refresh")
    log.info("cleared: re-running `dbt %s %s`", task.command, " ".join(args))
    config = elt_config.load()
    pipeline_project = dbt_project.of(config, config.pipeline(context["ti"].dag_id))
    outcome = dbt.invoke(task.command, args, project=pipeline_project)
    tasks.record_dbt_invocation(context, outcome.results, error=outcome.error)
    if outcome.error and not outcome.results:
        raise StepError(f"dbt {task.command} could not run: {outcome.error}")
    return outcome.results
