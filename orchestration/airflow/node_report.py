"""The task of one dbt node in the Cosmos task group: light to build, light to run.

Cosmos renders the dbt graph (which nodes, their task groups, ids and dependencies, the
producer that runs ``dbt build`` once); through ``RenderConfig.node_converters`` every model,
seed, snapshot and test task is a :class:`DbtNodeReport` instead of Cosmos' watcher sensor.
Why: building a Cosmos sensor costs 1–3 ms (it inspects three signatures per instance) and
running one reads several XComs through the API; this operator is built like an
``EmptyOperator`` and, once the producer is done, reads the node's result from
``elt_meta.dbt_results``, where the producer's callback wrote it.

Cleared without the producer, it re-runs its node instead: ``dbt run|seed|snapshot`` for
the node, ``dbt test`` for a model's tests — see :mod:`orchestration.airflow.node_tasks`.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator

# dbt command a cleared task runs for its node
COMMANDS = {"model": "run", "seed": "seed", "snapshot": "snapshot", "test": "test"}


class DbtNodeReport(BaseOperator):
    """Reports one dbt node's result from the producer's build; re-runs the node when it was
    cleared without the producer.

    ``model_unique_id`` is the node (a model's id for its ``test`` task, whose ``tests`` are
    the test ids to report; the attribute Cosmos' watcher tasks have); ``command`` the dbt
    command a retry runs.
    """

    ui_color = "#ffe4c4"
    ui_fgcolor = "#000000"

    def __init__(
        self,
        *,
        model_unique_id: str,
        command: str,
        tests: tuple[str, ...] = (),
        full_refresh: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_unique_id = model_unique_id
        self.command = command
        self.tests = tests
        self.full_refresh = full_refresh

    def execute(self, context: Any) -> None:
        """Report this node's result, or re-run the node (cleared without the producer)."""
        from orchestration.airflow import node_tasks

        node_tasks.report_or_rerun(self, context)


def node_converter(resource_type: str, full_refresh: bool):
    """A Cosmos ``node_converters`` entry: the task of a node of ``resource_type``."""

    def convert(*, dag: Any, task_group: Any, node: Any, task_id: str, **_: Any) -> DbtNodeReport:
        own = node.resource_type.value
        # a model's "test" task (after each) reports the model's tests; a test node itself
        kind = "test" if resource_type == "test" else own
        return DbtNodeReport(
            task_id=task_id,
            dag=dag,
            task_group=task_group,
            model_unique_id=node.unique_id,
            command=COMMANDS[kind],
            tests=(node.unique_id,) if own == "test" else (),
            full_refresh=full_refresh,
        )

    convert.__name__ = f"report_{resource_type}"
    return convert
