"""The Celery settings of our Airflow workers: Airflow's own, plus the modules every worker
imports once at start (Celery's ``imports``): :data:`orchestration.airflow.preload.PRELOADED`,
which each task process the worker's pool forks then inherits (see that module for why).

``AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS`` names :data:`CELERY_CONFIG` (see
:func:`orchestration.airflow.celery_workers.executor_env`); the Helm chart's workers can do
the same.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

from orchestration.airflow.preload import PRELOADED

CELERY_CONFIG: dict[str, Any] = {
    **DEFAULT_CELERY_CONFIG,
    "imports": (*DEFAULT_CELERY_CONFIG.get("imports", ()), *PRELOADED),
}
"""Airflow's default Celery configuration with :data:`PRELOADED` imported by every worker."""
