"""The process environment dlt needs, set once before dlt reads any configuration."""

from __future__ import annotations

import os

from elt import settings

# dlt imports Airflow (seconds) to offer Airflow Variables as a secrets provider when Airflow
# is installed; our secrets come from the environment, resolved by elt.config.
DLT_SETTINGS = {"PROVIDERS__ENABLE_AIRFLOW_SECRETS": "false"}


def prepare_dlt_environment() -> None:
    """Keep dlt's files inside .elt/, telemetry off, no Airflow import; never overrides a
    variable that is already set."""
    for key, value in {**settings.tool_homes(), **DLT_SETTINGS}.items():
        os.environ.setdefault(key, value)
