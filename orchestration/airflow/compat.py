"""Every private or internal Airflow and Cosmos name the Airflow adapter uses, in one place.

Import them from here, never from Airflow or Cosmos directly; ``PRIVATE_NAMES`` lists them
with the parameters we pass, and ``tests/unit/test_private_api.py`` checks each one against
the installed versions.
"""

from __future__ import annotations

from typing import Any

from orchestration.private_api import PrivateName

# Cosmos names its watcher producer task so; the gate and the node tasks look for it
PRODUCER_TASK = "dbt_producer_watcher"
# the producer's method that makes its dbt log-line parser (we replace it per instance)
PRODUCER_LOG_PARSER = "_make_parse_callable"

PRIVATE_NAMES = [
    PrivateName(
        "airflow.sdk.execution_time.supervisor",
        "in_process_api_server",
        (),
        "dag.test() starts an in-process API server per task; `elt airflow test` reuses one",
    ),
    PrivateName(
        "airflow.sdk.definitions.dag",
        "_run_task",
        ("ti", "task", "run_triggerer"),
        "re-running cleared tasks in-process, as dag.test() runs tasks",
    ),
    PrivateName(
        "airflow.models.taskinstance",
        "clear_task_instances",
        ("tis", "session", "dag_run_state"),
        "clearing tasks of a finished run in tests of retries",
    ),
    PrivateName(
        "cosmos.operators.watcher",
        f"DbtProducerWatcherOperator.{PRODUCER_LOG_PARSER}",
        (),
        "the producer's dbt log parser: ours logs the lines and pushes no per-node XComs",
    ),
    PrivateName(
        "cosmos.dbt.graph",
        "DbtGraph.filtered_nodes",
        None,
        "the dbt nodes a DbtTaskGroup rendered: what the gate expects results for",
    ),
    PrivateName(
        "cosmos.dbt.graph",
        "DbtGraph.tests_per_model",
        None,
        "which tests each model's test task reports",
    ),
    PrivateName(
        "cosmos.operators.local",
        "DbtLocalBaseOperator.build_and_run_cmd",
        ("context", "cmd_flags"),
        "the producer's dbt build on a cleared run, which Cosmos' producer would skip",
    ),
]


def reuse_in_process_api_server() -> None:
    """Make dag.test() start its in-process API server once per process, not per task."""
    import functools

    import airflow.sdk.execution_time.supervisor as supervisor

    supervisor.in_process_api_server = functools.cache(supervisor.in_process_api_server)


def run_task_in_process(ti: Any, task: Any) -> Any:
    """Run one scheduled task instance in this process, as dag.test() does."""
    from airflow.sdk.definitions.dag import _run_task

    return _run_task(ti=ti, task=task, run_triggerer=True)


def rendered_nodes(group: Any) -> dict[str, Any]:
    """unique id → dbt node of the nodes a Cosmos DbtTaskGroup rendered."""
    return group.dbt_graph.filtered_nodes


def tests_per_model(group: Any) -> dict[str, list[str]]:
    """model unique id → its tests, as Cosmos grouped them."""
    return group.dbt_graph.tests_per_model


def build_without_watcher_checks(producer: Any, context: Any) -> Any:
    """The producer's ``dbt build`` (with its callback), as Cosmos' local operators run it,
    without the watcher's "skip any try after the first"."""
    return producer.build_and_run_cmd(context=context, cmd_flags=producer.add_cmd_flags())
