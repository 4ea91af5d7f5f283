"""A worker's own, empty state folder: what a task starts with on another machine or in a
fresh pod.

Local workers (Airflow's Celery workers, Prefect's process workers) run with this environment,
so the only things a task can get from an earlier one are those the warehouse (``elt_meta``,
dlt's state tables), the orchestrator's database or the project itself (what an image
carries) hold. Connections travel as environment variables, never as files.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from elt import paths, roles
from elt.settings import Connection

# what a worker never inherits from the machine's own state folder
INHERITED_STATE = ("PGPASSFILE", "DBT_TARGET_PATH", "DBT_LOG_PATH")


def worker_env(folder: Path, conn: Connection) -> dict[str, str]:
    """Recreate ``folder`` empty (with a ``home/`` inside) and return the variables that make
    a process use it as its whole local state: ``ELT_HOME``, every tool home, dbt's target, a
    private copy of the GX project (GX writes to it at run time, as the Helm chart's
    ``seed-state`` init container copies it), the warehouse as ``ELT_WAREHOUSE_URL`` and,
    under the least-privilege roles, the loader's login as ``ELT_LOADER_URL``."""
    shutil.rmtree(folder, ignore_errors=True)
    home = folder / "home"
    home.mkdir(parents=True)
    gx_copy = home / "expectations"
    shutil.copytree(paths.expectations_dir(), gx_copy, ignore=shutil.ignore_patterns("uncommitted"))
    env = {
        "ELT_HOME": str(home),
        "ELT_WAREHOUSE_URL": conn.url(),
        "ELT_GX_DIR": str(gx_copy),
        "DBT_TARGET_PATH": str(home / "dbt" / "target"),
        "DBT_LOG_PATH": str(home / "dbt" / "logs"),
        "DLT_DATA_DIR": str(home / "dlt"),
        "PREFECT_HOME": str(home / "prefect"),
        "AIRFLOW__COSMOS__CACHE_DIR": str(home / "cosmos"),
    }
    if roles.in_use():
        env["ELT_ROLES"] = "on"
        env["ELT_LOADER_URL"] = roles.role_connection(roles.LOADER, conn).url()
    else:
        env["ELT_ROLES"] = "off"
    return env


def without_machine_state(env: dict[str, str]) -> dict[str, str]:
    """``env`` without the variables that point into the machine's own state folder."""
    return {key: value for key, value in env.items() if key not in INHERITED_STATE}
