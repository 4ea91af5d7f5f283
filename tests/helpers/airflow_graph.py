"""The built Airflow DAGs as plain data, for tests that compare them with the Prefect flows.

    python -m tests.helpers.airflow_graph      # one JSON line: {dag_id: {...}}

Runs in its own process (Airflow's configuration stays out of the test process). For every
DAG: each task's upstream task ids, its task group, the dbt node it stands for (Cosmos'
``model_unique_id``) and whether it is a teardown; and the dbt nodes the quality gate
expects a result for (what the DAG was built to run).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def describe(dag: Any) -> dict[str, Any]:
    """One DAG as plain data."""
    tasks = {}
    for task in dag.tasks:
        group = task.task_group.group_id if task.task_group else None
        tasks[task.task_id] = {
            "upstream": sorted(task.upstream_task_ids),
            "group": group,
            "node": getattr(task, "model_unique_id", None),
            "type": type(task).__name__,
            "is_teardown": bool(getattr(task, "is_teardown", False)),
        }
    gate = dag.get_task("quality_gate").python_callable
    return {"tasks": tasks, "gate_expects": sorted(gate.keywords["expected"])}


def main() -> int:
    """Print every DAG of the DAGs folder as one JSON line."""
    from orchestration.airflow import testing

    testing.configure(os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"))
    from elt import settings

    settings.load_local_env()
    settings.apply_tool_env()
    bag = testing.load_dagbag(sync=False)
    if bag.import_errors:
        print(json.dumps({"import_errors": {str(k): str(v) for k, v in bag.import_errors.items()}}))
        return 1
    print(json.dumps({dag_id: describe(dag) for dag_id, dag in bag.dags.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
