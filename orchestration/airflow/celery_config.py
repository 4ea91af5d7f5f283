"""The Celery settings of our Airflow workers: Airflow's own, plus modules every worker
imports once at start (Celery's ``imports``).

Under Airflow 3 a Celery worker runs each task in a process forked from its pool process; the
fork starts with whatever the worker had imported, and imports everything else again: Airflow's
task runner, the DAG file's modules (it is parsed in every task process), and for the tasks
that use them dbt, dlt and Great Expectations. A pipeline's DAG run is dozens of short tasks,
so those imports were paid dozens of times per run; imported once in the worker before its
pool forks, each task process inherits them (copy-on-write). Nothing here connects anywhere
or reads a file at import, so forking after it is safe.

``AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS`` names :data:`CELERY_CONFIG` (see
:func:`orchestration.airflow.celery_workers.executor_env`); the Helm chart's workers can do
the same.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

PRELOADED = (
    "airflow.sdk.execution_time.task_runner",  # what every task process runs
    "orchestration.airflow.factory",  # the DAG file's imports (Cosmos, our task bodies)
    "dbt.cli.main",  # the Cosmos producer's dbt build, a cleared node's re-run
    "ingestion.runner",  # dlt, for the ingest tasks
    "great_expectations",  # the raw-stage checks and the gate
)
"""Modules each worker imports once, before its pool forks."""

CELERY_CONFIG: dict[str, Any] = {
    **DEFAULT_CELERY_CONFIG,
    "imports": (*DEFAULT_CELERY_CONFIG.get("imports", ()), *PRELOADED),
}
"""Airflow's default Celery configuration with :data:`PRELOADED` imported by every worker."""
