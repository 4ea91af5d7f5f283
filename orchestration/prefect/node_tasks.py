"""prefect-dbt's runner, with each dbt node's task run started in the dbt_build task's context.

``PrefectDbtRunner`` starts every node's task run in a new thread that rebuilds Prefect's
context from a serialized copy: a new ``Settings`` (pydantic-settings reading the
environment, ``profiles.toml`` and ``pyproject.toml`` again) and a new API client, twice per
node. On the jaffle-shop project that was a third of the flow's CPU time, more than dbt's.
Here the thread runs in a copy of the dbt_build task's own context variables (same flow run,
parent task run, settings and client), with the flow run context marked *detached* exactly
as the serialized copy is, so every node's task run still gets its own dynamic key.

Each node's task run also waits for the task runs of its upstream nodes to report, and
lists them as its ``wait_for`` inputs: the run's graph in the UI (and the parity test) shows
dbt's dependencies, not whichever upstream states happened to be known when the node
started (prefect-dbt's own way).

What a node's task run costs is what Prefect's server has to record, on the same machine
(py-spy of a 600-node flow run, BENCHMARKS.md): so the task run is made here, already
holding its ``wait_for`` inputs, and handed to the engine. The engine then sends two state
events (Running, then Completed or Failed) instead of three (no Pending, which dbt's node
never is), and does not resolve the upstream states' results before running (dbt has
finished the upstream nodes already). Its "Finished in state Completed()" line, one per
node, is not shipped to the server either (:class:`NodeLifecycleFilter`); a failed node's
lines are.

This reaches into two private methods of prefect-dbt 0.7 (``PrefectDbtRunner._call_task``,
``NodeTaskTracker.run_task_in_thread``); :func:`supported` checks they are there and
:func:`runner_class` falls back to the stock runner when they are not.
"""

from __future__ import annotations

import contextvars
import inspect
import logging
import threading
from contextlib import nullcontext
from functools import partial
from typing import Any

from prefect.context import FlowRunContext
from prefect_dbt import PrefectDbtRunner

from orchestration.prefect.compat import NodeTaskTracker, create_task_run_locally, run_task_sync

# the signature this module replaces; a different one means prefect-dbt changed underneath
_TRACKER_PARAMETERS = ["self", "node_id", "task", "task_run_id", "parameters", "context"]
# how long a node's task run waits for an upstream node's task run to report its state: dbt
# finished the upstream node before it started this one, so this is only Prefect's API time
UPSTREAM_REPORT_TIMEOUT_S = 60.0
# the name prefect-dbt gives every node's task (its function, ``execute_dbt_node``)
NODE_TASK_NAME = "execute_dbt_node"
# the logger Prefect's task engine (and prefect-dbt, for dbt's lines) logs task runs with
TASK_RUN_LOGGER = "prefect.task_runs"


class NodeLifecycleFilter(logging.Filter):
    """Drops the task engine's own lines below WARNING for dbt node task runs.

    That is "Finished in state Completed()" once per node: 600 log lines to the server and
    the console for the state the node's task run already shows. dbt's own lines (at the
    runner's log level) and every line of a failing node stay.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a node task run's engine line below WARNING."""
        return not (
            record.levelno < logging.WARNING
            and getattr(record, "task_name", None) == NODE_TASK_NAME
            and record.module == "task_engine"
        )


def install_node_log_filter() -> None:
    """Add :class:`NodeLifecycleFilter` to the task-run logger (once per process)."""
    logger = logging.getLogger(TASK_RUN_LOGGER)
    if not any(isinstance(f, NodeLifecycleFilter) for f in logger.filters):
        logger.addFilter(NodeLifecycleFilter())


class NodeReports:
    """One event per dbt node, set when the node's task run has its final state."""

    def __init__(self) -> None:
        self._events: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def event(self, node_id: str) -> threading.Event:
        """The node's event (created on first use)."""
        with self._lock:
            return self._events.setdefault(node_id, threading.Event())

    def upstream_states(self, tracker: NodeTaskTracker, node_id: str) -> list[Any]:
        """Final states of the node's upstream nodes that have a task run (sources, and
        nodes dbt did not run, have none), waiting for each to report."""
        states = []
        for dep in tracker.get_node_dependencies(node_id):
            if tracker.get_task_run_id(dep) is None:
                continue
            self.event(dep).wait(UPSTREAM_REPORT_TIMEOUT_S)
            state = tracker.get_task_result(dep)
            if state is not None:
                states.append(state)
        return states


def supported() -> bool:
    """True when the installed prefect-dbt has the two methods this module relies on."""
    method = getattr(NodeTaskTracker, "run_task_in_thread", None)
    if method is None or not hasattr(PrefectDbtRunner, "_call_task"):
        return False
    return list(inspect.signature(method).parameters) == _TRACKER_PARAMETERS


def start_node_task(
    tracker: NodeTaskTracker,
    parent: contextvars.Context,
    reports: NodeReports,
    node_id: str,
    task: Any,
    task_run_id: Any,
    parameters: dict[str, Any],
    context: dict[str, Any] | None = None,
) -> None:
    """Start one node's task run in a thread running in a copy of ``parent``.

    Same contract as ``NodeTaskTracker.run_task_in_thread``: the task waits for the node's
    upstream task runs, then for dbt to finish the node, and its final state is kept.
    ``context`` (the serialized copy) is not needed.
    """

    def run() -> None:
        flow_run = FlowRunContext.get()
        detached = flow_run.model_copy(update={"detached": True}) if flow_run else nullcontext()
        state = None
        try:
            with detached:
                # made as the engine would (same context, dynamic key, parents), plus the
                # upstream task runs as wait_for inputs; the engine sends no Pending for it
                task_run = create_task_run_locally(
                    task,
                    id=task_run_id,
                    parameters=parameters,
                    wait_for=reports.upstream_states(tracker, node_id) or None,
                )
                state = run_task_sync(
                    task, task_run=task_run, parameters=parameters, return_type="state"
                )
        finally:
            tracker.set_task_result(node_id, state)
            reports.event(node_id).set()

    thread = threading.Thread(
        target=parent.copy().run, args=(run,), name=f"{node_id} (run_task)", daemon=True
    )
    thread.start()


class ContextSharingDbtRunner(PrefectDbtRunner):
    """``PrefectDbtRunner`` whose node task runs share the invoking task's context."""

    _parent_context: contextvars.Context | None = None
    _reports: NodeReports | None = None

    def invoke(self, args: list[str], **kwargs: Any):
        """As ``PrefectDbtRunner.invoke``; remembers the caller's context for the nodes."""
        self._parent_context = contextvars.copy_context()
        self._reports = NodeReports()
        try:
            return super().invoke(args, **kwargs)
        finally:
            self._parent_context = None
            self._reports = None

    def _call_task(self, task_state, manifest_node, context, enable_assets):
        parent, reports = self._parent_context, self._reports
        if parent is not None and reports is not None:
            task_state.run_task_in_thread = partial(start_node_task, task_state, parent, reports)
        return super()._call_task(task_state, manifest_node, context, enable_assets)


def runner_class() -> type[PrefectDbtRunner]:
    """The context-sharing runner, or prefect-dbt's own when its internals have changed."""
    return ContextSharingDbtRunner if supported() else PrefectDbtRunner
