"""Every private or internal Prefect and prefect-dbt name the Prefect adapter uses.

Import them from here; ``PRIVATE_NAMES`` lists them with the parameters we pass, and
``tests/unit/test_private_api.py`` checks each one against the installed versions.
"""

from __future__ import annotations

from prefect.task_engine import _create_task_run_locally as create_task_run_locally
from prefect.task_engine import run_task_sync
from prefect_dbt.core._tracker import NodeTaskTracker

from orchestration.private_api import PrivateName

__all__ = ["PRIVATE_NAMES", "NodeTaskTracker", "create_task_run_locally", "run_task_sync"]

PRIVATE_NAMES = [
    PrivateName(
        "prefect_dbt.core._tracker",
        "NodeTaskTracker.run_task_in_thread",
        ("self", "node_id", "task", "task_run_id", "parameters", "context"),
        "node task runs started in the dbt_build task's own context (node_tasks.py)",
    ),
    PrivateName(
        "prefect_dbt",
        "PrefectDbtRunner._call_task",
        ("self", "task_state", "manifest_node", "context", "enable_assets"),
        "the per-node hook node_tasks.py overrides",
    ),
    PrivateName(
        "prefect.deployments.runner",
        "RunnerDeployment._entrypoint_type",
        None,
        "served deployments whose runs import the flow by module path, as a worker does",
    ),
    PrivateName(
        "prefect.task_engine",
        "run_task_sync",
        ("task", "task_run", "parameters", "return_type"),
        "running a node's task run in a thread with a given context",
    ),
    PrivateName(
        "prefect.task_engine",
        "_create_task_run_locally",
        ("task", "id", "parameters", "wait_for"),
        "a node's task run made before the engine runs it: no Pending event, no wait_for"
        " results resolved (node_tasks.py)",
    ),
]


def import_by_module(deployment, module_path: str) -> None:
    """Make a served ``RunnerDeployment`` start its runs by importing ``module_path``."""
    from prefect.deployments.runner import EntrypointType

    deployment.entrypoint = module_path
    deployment._entrypoint_type = EntrypointType.MODULE_PATH
