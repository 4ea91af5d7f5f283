"""dbt, invoked in-process (dbtRunner) with the environment from ``elt.settings``.

In-process avoids a ~2 s interpreter start per call and gives typed node results, which
go to ``elt_meta.dbt_results`` and to the run summary.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from elt import paths, settings
from elt import project as dbt_project
from elt.project import DbtProject
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
    folder under ``.elt/dbt/``). ``quiet`` keeps dbt's console to warnings and errors (its
    full log still goes to ``.elt/logs/dbt.log``); ``on_node`` is called as each node
    finishes, for progress.
    """
    from dbt.cli.main import dbtRunner

    settings.apply_tool_env()
    project = project or dbt_project.of()
    # a command group ("docs generate") takes its options after the subcommand
    argv = [*command.split(), *project.cli_args()]
    argv += ["--log-path", str(paths.state_dir() / "logs")]
    if quiet:
        argv += ["--log-level", "warn"]
    argv += ["--target-path", str(target_path or project.target_dir())]
    argv += list(args)
    callbacks = [_progress_callback(on_node)] if on_node else []
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
