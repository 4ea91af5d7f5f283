"""``dbt build`` through prefect-dbt: one dbt process, one Prefect task run per dbt node.

``PrefectDbtRunner`` runs dbt in-process and turns dbt's node events into task runs (with
their logs) as they happen, so the flow shows every model, test and unit test without paying
a dbt start per node. Its own pass/fail verdict is not trusted: older versions counted
skipped nodes as successes, so the node results go to ``elt_meta.dbt_results`` and the
quality gate (``elt.steps``) decides, exactly as in ``elt run``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from elt import dbt, paths, settings
from elt import project as dbt_project
from elt.project import DbtProject
from elt.steps import StepError, StepRunner

log = logging.getLogger(__name__)

# How long to wait, after dbt returned, for the node task runs to report their final state.
NODE_REPORT_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class DbtOptions:
    """How prefect-dbt reports nodes; the defaults are the fast ones (bench/prefect_vs_dbt.py)."""

    # Prefect assets (lineage events) per materialized node: ~20% more CPU for the build
    assets: bool = False
    # dbt's own log lines forwarded to Prefect, per node: "warn" keeps problems, drops chatter
    log_level: str = "warn"
    # node task runs share the dbt_build task's context (node_tasks.py): a third of the CPU
    # and memory of prefect-dbt's own way, which rebuilds Prefect's settings per node
    share_context: bool = True


def invoke_build(
    args: Sequence[str], options: DbtOptions, project: DbtProject | None = None
) -> dbt.DbtOutcome:
    """Run ``dbt build <args>`` with per-node task runs; returns every node's result.

    Raises :class:`StepError` when dbt could not run at all (bad project, no connection):
    that is worth a retry, a failed test is not.
    """
    from dbt_common.events.base_types import EventLevel
    from prefect_dbt import PrefectDbtRunner, PrefectDbtSettings

    from orchestration.prefect.node_tasks import install_node_log_filter, runner_class

    settings.apply_tool_env()
    install_node_log_filter()
    project = project or dbt_project.of()
    runner_type = runner_class() if options.share_context else PrefectDbtRunner
    runner = runner_type(
        settings=PrefectDbtSettings(
            project_dir=project.path,
            profiles_dir=project.profiles_dir(),  # the generated profile (elt.project)
            target_path=project.target_dir(),
            log_level=EventLevel(options.log_level),
        ),
        raise_on_failure=False,  # the quality gate decides, from every node's status
        disable_assets=not options.assets,
    )
    before = set(threading.enumerate())
    try:
        # the same --profile/--target as elt's other dbt invocations on this target folder
        # (the quality gate's `dbt ls`): else each finds the other's partial parse stale
        log_path = str(paths.state_dir() / "logs")
        result = runner.invoke(["build", "--log-path", log_path, *project.profile_args(), *args])
    except ValueError as exc:  # prefect-dbt's wrapper for "dbt raised instead of running"
        raise StepError(f"dbt build could not run: {exc}") from None
    finally:
        _wait_for_node_tasks(before)
    return outcome_of("build", result)


def _wait_for_node_tasks(before: set[threading.Thread]) -> None:
    """Wait until the node task runs prefect-dbt started have reported their final state.

    prefect-dbt runs each node's task in a daemon thread and returns as soon as dbt is done,
    while those threads may still be sending states. Left alone they are killed at process
    exit and their task runs stay "Running" in the UI forever.
    """
    deadline = time.monotonic() + NODE_REPORT_TIMEOUT_S
    threads = [
        t for t in threading.enumerate() if t not in before and t.name.endswith("(run_task)")
    ]
    for thread in threads:
        thread.join(timeout=max(deadline - time.monotonic(), 0.0))
    unfinished = sum(thread.is_alive() for thread in threads)
    if unfinished:
        log.warning("%d dbt node task run(s) did not report a final state in time", unfinished)


def outcome_of(command: str, result) -> dbt.DbtOutcome:
    """A dbtRunner result as :class:`elt.dbt.DbtOutcome` (the shape ``elt run`` records)."""
    records = []
    if result.result is not None and hasattr(result.result, "results"):
        records = [dbt.result_record(node_result) for node_result in result.result.results]
    outcome = dbt.DbtOutcome(command=command, success=bool(result.success), results=records)
    outcome.error = str(result.exception) if result.exception is not None else None
    if outcome.failed:
        outcome.success = False
    return outcome


class PrefectStepRunner(StepRunner):
    """``elt.steps.StepRunner`` with dbt run by prefect-dbt; every other step is unchanged."""

    def __init__(self, *args, dbt_options: DbtOptions | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.dbt_options = dbt_options or DbtOptions()

    def dbt_build(self, args: list[str]) -> dbt.DbtOutcome:
        """``dbt build`` through prefect-dbt: a task run and events per node."""
        return invoke_build(args, self.dbt_options, self.project)
