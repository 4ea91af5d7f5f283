"""The environment Airflow and Cosmos run in: homes under ``.elt/``, quiet, local-only.

Everything here is plain data (no Airflow import), so the DAG file can apply it before
Airflow or Cosmos read their configuration, and ``elt airflow up`` can hand it to the
processes it starts. The warehouse password never goes into DAG or task arguments: task
processes get it from :func:`elt.settings.apply_tool_env` when they start.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from elt import paths, settings

METADATA_DATABASE = "airflow"
SQL_ALCHEMY_CONN = "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"
DAGS_FOLDER = Path(__file__).resolve().parent / "dags"

# Cosmos: cache under .elt (from tool_homes), no telemetry, no dbt ls at parse time.
_COSMOS = {
    "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
    "AIRFLOW__COSMOS__PROPAGATE_LOGS": "False",
}
_AIRFLOW = {
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    # a broken pipelines.yml shows as one message, not a traceback
    "AIRFLOW__CORE__DAGBAG_IMPORT_ERROR_TRACEBACKS": "False",
    "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
    "AIRFLOW__CORE__DAG_FILE_PROCESSOR_TIMEOUT": "180",
    "AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR": "True",
    # a cron schedule's run covers [previous tick, tick): the data interval its ingest reads
    # (Airflow 3's default runs at a point in time, with an empty interval)
    "AIRFLOW__SCHEDULER__CREATE_CRON_DATA_INTERVALS": "True",
}


def airflow_home() -> Path:
    """``AIRFLOW_HOME``: ``.elt/airflow`` (or under ``ELT_HOME``)."""
    return Path(settings.tool_homes()["AIRFLOW_HOME"])


def base_env() -> dict[str, str]:
    """Tool homes, telemetry off, the DAGs folder; no connection, no secret."""
    env = {**settings.tool_homes(), **_COSMOS, **_AIRFLOW}
    env["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS_FOLDER)
    return env


def apply_base_env() -> None:
    """Put :func:`base_env` into this process without overriding what is already set.

    Called by the DAG file before Airflow/Cosmos settings are read, so a DAG processor started
    by hand still keeps Cosmos' cache and dbt's files inside the project.
    """
    for key, value in base_env().items():
        os.environ.setdefault(key, value)


def metadata_url(conn: settings.Connection | None = None) -> str:
    """SQLAlchemy URL of Airflow's metadata database ``airflow`` on the warehouse server."""
    conn = conn or settings.warehouse()
    return conn.url(METADATA_DATABASE, driver="postgresql+psycopg2")


def use_metadata_database() -> None:
    """Point this process at Airflow's metadata database before Airflow is imported.

    The database the environment names wins (``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` or its
    ``_CMD``/``_SECRET`` forms, as the Helm chart gives its containers): nothing local is
    started then. Without it, the local one: database ``airflow`` on the (embedded) warehouse.
    """
    apply_base_env()
    if any(key.startswith(SQL_ALCHEMY_CONN) for key in os.environ):
        return
    conn = settings.warehouse()
    ensure_metadata_database(conn)
    os.environ[SQL_ALCHEMY_CONN] = metadata_url(conn)


def ensure_metadata_database(conn: settings.Connection) -> None:
    """Create the database ``airflow`` on the warehouse server when it is missing."""
    import psycopg2

    admin = psycopg2.connect(conn.url("postgres"), connect_timeout=10)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute("select 1 from pg_database where datname = %s", (METADATA_DATABASE,))
            if cur.fetchone() is None:
                cur.execute(f'create database "{METADATA_DATABASE}"')
    finally:
        admin.close()


def worker_hostname() -> str:
    """``TaskInstance.hostname`` (Airflow's ``hostname_callable``): ``<worker>@<host>`` in a
    local Celery worker, so the workers of one machine can be told apart; else the host."""
    import socket

    name = os.environ.get("ELT_WORKER_NAME")
    host = socket.getfqdn()
    return f"{name}@{host}" if name else host


def jwt_secret() -> str:
    """The secret the api-server and the workers share to sign task tokens (0600 file)."""
    path = airflow_home() / "jwt_secret"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def server_env(conn: settings.Connection, port: int) -> dict[str, str]:
    """The environment of the local api-server, scheduler and dag-processor."""
    return {
        **base_env(),
        **settings.tool_env(conn),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url(conn),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__API_AUTH__JWT_SECRET": jwt_secret(),
        # local only (bound to 127.0.0.1): no login screen
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "ELT_PROJECT_DIR": str(paths.project_root()),
        "PYTHONPATH": _python_path(),
    }


def _python_path() -> str:
    root = str(paths.project_root())
    current = os.environ.get("PYTHONPATH", "")
    return root if not current else f"{root}{os.pathsep}{current}"
