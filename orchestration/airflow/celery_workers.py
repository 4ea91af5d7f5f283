"""The CeleryExecutor on this machine: a Redis broker on 127.0.0.1 and workers that share
nothing on disk.

Each worker gets its own working folder ``.elt/airflow/workers/<name>/`` with an empty scratch
``ELT_HOME`` recreated at every start (:mod:`elt.scratch`), so a task can only get what an
earlier task produced from the warehouse, the Airflow metadata database or the project itself,
as in a fresh pod under the KubernetesExecutor. What a worker reads from the project is what
an image carries: the code, ``pipelines.yml``, the dbt project and the dbt manifest built by
``elt airflow up`` (``ELT_DBT_MANIFEST``). Connections come from the environment only.

Plain data and files here, no Airflow import.
"""

from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path

from elt import scratch, settings
from orchestration.airflow import environment

BROKER_DATABASE = 0
CELERY_CONFIG_OPTIONS = "orchestration.airflow.celery_config.CELERY_CONFIG"


def workers_dir() -> Path:
    """Parent of the workers' own folders."""
    return environment.airflow_home() / "workers"


def worker_names(count: int) -> list[str]:
    """``worker-1`` … ``worker-<count>``: also each worker's own Celery queue."""
    return [f"worker-{n}" for n in range(1, count + 1)]


def free_port() -> int:
    """A free TCP port on 127.0.0.1 for the broker."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_config(run_dir: Path, port: int) -> Path:
    """A redis.conf (mode 0600): loopback only, a generated password, nothing persisted."""
    password = secrets.token_urlsafe(24)
    path = run_dir / "redis.conf"
    path.unlink(missing_ok=True)
    lines = [
        "bind 127.0.0.1",
        f"port {port}",
        "protected-mode yes",
        f"requirepass {password}",
        'save ""',
        "appendonly no",
        f"dir {run_dir}",
        "daemonize no",
    ]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


def broker_url(config: Path) -> str:
    """The ``redis://`` URL (with its password) of the broker that ``config`` describes."""
    values = dict(line.split(" ", 1) for line in config.read_text().splitlines() if " " in line)
    return f"redis://:{values['requirepass']}@127.0.0.1:{values['port']}/{BROKER_DATABASE}"


def executor_env(broker: str, metadata_url: str) -> dict[str, str]:
    """What the scheduler, api-server and workers add to run the CeleryExecutor."""
    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": broker,
        # task states go to the metadata database: nothing else to run or keep
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{metadata_url}",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
        # Airflow's Celery settings plus what every task imports, imported once per worker
        "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": CELERY_CONFIG_OPTIONS,
        # TaskInstance.hostname names the worker (they all share this machine's name)
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "orchestration.airflow.environment.worker_hostname",
    }


def worker_env(server_env: dict[str, str], name: str, conn: settings.Connection) -> dict[str, str]:
    """A worker's environment; its folder is created empty (see the module docstring)."""
    from orchestration.airflow import manifest

    folder = workers_dir() / name
    return {
        **scratch.without_machine_state(server_env),
        **scratch.worker_env(folder, conn),
        "ELT_WORKER_NAME": name,
        "ELT_DBT_MANIFEST": str(manifest.manifest_path()),
        "AIRFLOW_HOME": str(folder / "airflow"),
        # task logs where the api-server reads them (logs are never read by tasks)
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(environment.airflow_home() / "logs"),
    }
