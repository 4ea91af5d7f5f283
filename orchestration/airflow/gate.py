"""The quality gate under Airflow: ``elt run``'s gate, after what only Airflow knows.

Every task before the gate succeeded (Airflow's task states) and every node of the rendered
dbt graph reported a result for this run (a Cosmos task that never ran leaves none).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from elt import runs
from elt.steps import StepError, StepRunner, node_name
from orchestration.airflow.tasks import PRODUCER_TASKS, run_states

_NOT_DONE = {"failed", "upstream_failed"}


class GateStepRunner(StepRunner):
    """The gate as ``elt run`` runs it, after what only Airflow can know: every task before
    the gate succeeded and every node of the rendered dbt graph reported a result."""

    def __init__(
        self, *args: Any, airflow_context: dict[str, Any], expected: Iterable[str], **kw: Any
    ):
        super().__init__(*args, **kw)
        self.context, self.expected = airflow_context, tuple(expected)

    def _gate_preconditions(self) -> None:
        """After the failed-node check: failed upstream tasks, then unreported nodes."""
        _upstream_succeeded(self.context)
        _all_nodes_reported(self.url, self.result.run_id, self.expected)


def _upstream_succeeded(context: dict[str, Any]) -> None:
    own = context["ti"].task_id
    states = run_states(context)
    bad = sorted(
        task
        for task, state in states.items()
        if state in _NOT_DONE and task != own and task not in PRODUCER_TASKS
    )
    if bad:
        names = ", ".join(bad[:10])
        raise StepError(
            f"quality gate closed: {len(bad)} task(s) before the gate did not succeed ({names});"
            " nothing was published"
        )


def _all_nodes_reported(url: str, run_id: str, expected: Iterable[str]) -> None:
    wanted = set(expected)
    with runs.connect(url) as conn, conn.cursor() as cur:
        cur.execute(f"select unique_id from {runs.SCHEMA}.dbt_results where run_id = %s", (run_id,))
        recorded = {row[0] for row in cur.fetchall()}
    missing = sorted(wanted - recorded)
    if missing:
        names = ", ".join(node_name(node) for node in missing[:10])
        raise StepError(
            f"quality gate closed: {len(missing)} dbt node(s) have no result in this run"
            f" ({names}); nothing was published. If the dbt project changed, run"
            " `elt airflow parse-manifest`."
        )
