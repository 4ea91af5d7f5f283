"""Modules an Airflow process imports once, so the task processes it forks inherit them.

Under Airflow 3 every task runs in a process forked from its executor's worker: a Celery
worker's pool process, or a LocalExecutor worker the scheduler forked when it started. The
fork starts with whatever that process had imported and imports everything else again:
Airflow's task runner, the DAG file's modules (it is parsed in every task process), and for
the tasks that use them dbt, dlt and Great Expectations. A pipeline's DAG run is dozens of
short tasks, so those imports were paid dozens of times per run. Nothing here connects
anywhere or reads a file at import, so forking after it is safe.

    python -m orchestration.airflow.preload scheduler --skip-serve-logs

runs an Airflow command after importing them: ``elt airflow up`` starts the LocalExecutor's
scheduler this way (the Celery workers get them through Celery's ``imports``, see
:mod:`orchestration.airflow.celery_config`).
"""

from __future__ import annotations

import importlib
import runpy
import sys

PRELOADED = (
    "airflow.sdk.execution_time.task_runner",  # what every task process runs
    "orchestration.airflow.factory",  # the DAG file's imports (Cosmos, our task bodies)
    "dbt.cli.main",  # the Cosmos producer's dbt build, a cleared node's re-run
    "ingestion.runner",  # dlt, for the ingest tasks
    "great_expectations",  # the raw-stage checks and the gate
)
"""Modules imported once, before the process forks its task processes."""


def import_all() -> None:
    """Import every module of :data:`PRELOADED` into this process."""
    for name in PRELOADED:
        importlib.import_module(name)


def main(args: list[str]) -> None:
    """Run the Airflow command ``args`` (as ``airflow ARGS…``) after :func:`import_all`."""
    import_all()
    sys.argv = ["airflow", *args]
    # as `python -m airflow ARGS…` runs it: Airflow's CLI without importing its private
    # ``airflow.__main__`` by name (tests/unit/test_private_api.py)
    runpy.run_module("airflow", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
