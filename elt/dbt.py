"""dbt, invoked in-process (dbtRunner) with the environment from ``elt.settings``.

In-process avoids a ~2 s interpreter start per call and gives typed node results, which
go to ``elt_meta.dbt_results`` and to the run summary.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from elt import paths, settings
from elt import project as dbt_project
from elt.project import DbtProject
from elt.redact import redactor
from elt.runs import DbtResultRecord

# statuses that mean "a node did not do its job": skipped nodes count, so a run whose model
# was skipped because an upstream test failed is never reported as a success
FAILED_STATUSES = ("error", "fail", "skipped", "runtime error")


class DbtError(RuntimeError):
    """dbt could not run (bad project, no connection) or a node failed."""


@dataclass
class DbtOutcome:
    """What one dbt invocation did."""

    command: str
    success: bool
    results: list[DbtResultRecord] = field(default_factory=list)
    error: str | None = None
    listed: list[str] | None = None  # what `dbt ls` printed, one node per item

    def count(self, resource_type: str, status: str | None = None) -> int:
        """How many nodes of a type (and optional status) there were."""
        return sum(
            1
            for r in self.results
            if r.resource_type == resource_type and (status is None or r.status == status)
        )

    @property
    def failed(self) -> list[DbtResultRecord]:
        """Nodes that errored, failed, warned-as-error or were skipped."""
        return [r for r in self.results if r.status in FAILED_STATUSES]

    @property
    def warned(self) -> list[DbtResultRecord]:
        """Tests that returned warnings (severity: warn)."""
        return [r for r in self.results if r.status == "warn"]


def result_record(result: Any) -> DbtResultRecord:
    """One dbt node result as the row elt_meta.dbt_results stores."""
    node = result.node
    adapter = getattr(result, "adapter_response", None) or {}
    return DbtResultRecord(
        unique_id=node.unique_id,
        resource_type=str(node.resource_type),
        status=str(result.status),
        execution_time_s=float(result.execution_time or 0.0),
        rows_affected=adapter.get("rows_affected") if isinstance(adapter, dict) else None,
        failures=getattr(result, "failures", None),
        message=(result.message or None) and str(result.message)[:2000],
    )


def _progress_callback(on_node: Callable[[str, str], None]) -> Callable[[Any], None]:
    """A dbt event callback that reports each finished node (unique id, status)."""

    def callback(event: Any) -> None:
        if event.info.name != "NodeFinished":
            return
        node = event.data.node_info
        on_node(node.unique_id, node.node_status)

    return callback


# dbt's event levels, lowest first ("test" events log like debug ones)
_LEVELS = {"debug": 0, "test": 0, "info": 1, "warn": 2, "error": 3}
_NOT_ON_CONSOLE = ("CacheAction", "CacheDumpGraph")  # as dbt's console (no --log-cache-events)


def _console_callback(level: str) -> Callable[[Any], None]:
    """dbt's console as an event callback: the events at ``level`` or above and every
    ``print()``, with dbt's timestamp, secrets scrubbed.

    dbt's own console logger formats and scrubs every event (≈ 20 per node, most of them
    debug) before its level drops them, rescanning the environment for secrets each time;
    this formats only the lines it prints, with the secrets read once per invocation.
    """
    from dbt_common.exceptions.base import env_secrets

    threshold = _LEVELS[level]
    scrub = redactor(env_secrets())  # dbt's DBT_ENV_SECRET_* values and ours
    lock = threading.Lock()  # events arrive from dbt's worker threads

    def callback(event: Any) -> None:
        info = event.info
        if info.name in _NOT_ON_CONSOLE:
            return
        if info.name == "PrintEvent":  # dbt prints these at every level, without a time
            line = info.msg
        elif _LEVELS.get(info.level, 0) >= threshold:
            line = f"{datetime.now(UTC):%H:%M:%S}  {info.msg}"
        else:
            return
        with lock:
            sys.stdout.write(scrub(line) + "\n")
            sys.stdout.flush()

    return callback


def _console_args(quiet: bool, callbacks: list[Callable[[Any], None]]) -> list[str]:
    """dbt's console logger off, ours (:func:`_console_callback`) on at the level dbt's would
    have; the file log keeps the level dbt would give it (its ``--log-level`` leads
    ``--log-level-file`` when set: quiet or ``DBT_LOG_LEVEL``; else debug)."""
    chosen = "warn" if quiet else os.environ.get("DBT_LOG_LEVEL")
    level = chosen or "info"
    if level in _LEVELS:
        callbacks.append(_console_callback(level))
    args = ["--log-level", "none"]
    if not os.environ.get("DBT_LOG_LEVEL_FILE"):
        args += ["--log-level-file", chosen or "debug"]
    return args


def invoke(
    command: str,
    args: Sequence[str] = (),
    *,
    project: DbtProject | None = None,
    target_path: Path | None = None,
    quiet: bool = False,
    on_node: Callable[[str, str], None] | None = None,
) -> DbtOutcome:
    """Run ``dbt <command> <args>`` in-process against the warehouse from ``elt.settings``.

    ``project`` defaults to the top-level dbt project of ``pipelines.yml``; its generated
    profile supplies the connection. Artifacts go to ``target_path`` (default: the project's
    folder under ``.elt/dbt/``). ``quiet`` keeps dbt's console to warnings and errors (and
    ``.elt/logs/dbt.log`` too, as dbt's ``--log-level`` does; without it the file gets dbt's
    debug log); ``on_node`` is called as each node finishes, for progress.
    """
    from dbt.cli.main import dbtRunner

    settings.apply_tool_env()
    project = project or dbt_project.of()
    # a command group ("docs generate") takes its options after the subcommand
    argv = [*command.split(), *project.cli_args()]
    argv += ["--log-path", str(paths.state_dir() / "logs")]
    callbacks = [_progress_callback(on_node)] if on_node else []
    if "--log-level" not in args:
        argv += _console_args(quiet, callbacks)
    argv += ["--target-path", str(target_path or project.target_dir())]
    argv += list(args)
    result = dbtRunner(callbacks=callbacks).invoke(argv)
    records: list[DbtResultRecord] = []
    if result.result is not None and hasattr(result.result, "results"):
        records = [result_record(r) for r in result.result.results]
    error = str(result.exception) if result.exception is not None else None
    outcome = DbtOutcome(command=command, success=bool(result.success), results=records)
    outcome.error = error
    if isinstance(result.result, list):
        outcome.listed = [str(item) for item in result.result]
    if outcome.failed:
        outcome.success = False
    return outcome


def selection_args(select: Sequence[str], exclude: Sequence[str] = ()) -> list[str]:
    """``--select``/``--exclude`` arguments for a pipeline's dbt spec."""
    args: list[str] = []
    if select:
        args += ["--select", *select]
    if exclude:
        args += ["--exclude", *exclude]
    return args
