"""What a dbt node's task does (:class:`~orchestration.airflow.node_report.DbtNodeReport`).

First try: the producer's ``dbt build`` is done (node tasks start after it) and its callback
wrote every node's result to ``elt_meta.dbt_results``; the task reads its node's rows (a
model's ``test`` task: the model's tests) and succeeds, fails with dbt's message, or skips
as dbt did. No result: skipped when dbt never ran (the producer could not start), failed
otherwise (a stale manifest, or a build that died).

Cleared (try 2 and later): the task re-runs its node in-process, as ``elt run`` runs dbt —
``dbt run|seed|snapshot --select <node>``, or ``dbt test --select <model>`` for a model's
tests — records the results (they replace the node's rows) and judges them the same way.
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


def report_or_rerun(task: Any, context: dict[str, Any]) -> None:
    """Judge the node's result from the build, or re-run the node when the task was cleared."""
    url = settings.warehouse_url()
    run_id = run_state.run_id_from_context(context["ti"].dag_id, context)
    if context["ti"].try_number > 1:
        # the re-run works for the run: it holds (and reopens) the run as any step does
        with tasks.attached_run(context["ti"].dag_id, context):
            results = _rerun(task, context)
    else:
        wanted = task.tests if task.command == "test" else (task.model_unique_id,)
        results = _recorded(url, run_id, wanted)
        _require_all(wanted, results, context)
    judge(results)


def _recorded(url: str, run_id: str, unique_ids: Iterable[str]) -> list[runs.DbtResultRecord]:
    return run_state.build_results(url, run_id, unique_ids)


def _require_all(
    wanted: Iterable[str], results: list[runs.DbtResultRecord], context: dict[str, Any]
) -> None:
    missing = sorted(set(wanted) - {r.unique_id for r in results})
    if not missing:
        return
    producer = tasks.PRODUCER_TASKS[0]
    state = tasks.run_states(context, task_ids=[producer]).get(producer)
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
