"""A local Airflow for the project: api-server (UI on 127.0.0.1), scheduler, dag-processor.

``up()`` starts the warehouse, creates Airflow's metadata database ``airflow`` on it,
migrates it, syncs the pools, builds the dbt manifest and starts the three processes in the
background (``AIRFLOW_HOME`` = ``.elt/airflow``, logs in ``.elt/airflow/logs``, one PID
file each in ``.elt/airflow/run``). ``down()`` stops exactly those processes, by PID.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil

from elt import settings
from elt.subprocesses import run_checked
from orchestration.airflow import environment

PROCESSES = {
    "api-server": ["api-server"],
    # no log server (it would listen on every interface): the UI reads the log files
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
}
DEFAULT_PORT = 8080
READY_TIMEOUT_S = 180
STOP_TIMEOUT_S = 30


class AirflowLocalError(RuntimeError):
    """The local Airflow could not be started or stopped; the message says why."""


@dataclass(frozen=True)
class Service:
    """One background Airflow process."""

    name: str
    pid: int | None
    log: Path

    @property
    def running(self) -> bool:
        """True when the PID is alive and still an Airflow process."""
        return self.pid is not None and _is_airflow(self.pid)


def run_dir() -> Path:
    """Where the PID files live."""
    path = environment.airflow_home() / "run"
    path.mkdir(parents=True, exist_ok=True)
    return path


def log_dir() -> Path:
    """Where the processes write their output."""
    path = environment.airflow_home() / "logs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _airflow_executable() -> str:
    return str(Path(sys.executable).with_name("airflow"))


def _is_airflow(pid: int) -> bool:
    try:
        process = psutil.Process(pid)
        return process.is_running() and "airflow" in " ".join(process.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def services() -> list[Service]:
    """The three services and their state."""
    found = []
    for name in PROCESSES:
        pid_file = run_dir() / f"{name}.pid"
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            pid = None
        found.append(Service(name, pid, log_dir() / f"{name}.log"))
    return found


def port_file() -> Path:
    """The port the api-server was started on."""
    return run_dir() / "port"


def ui_url() -> str | None:
    """The UI's URL when the api-server was started by :func:`up`."""
    try:
        return f"http://127.0.0.1:{int(port_file().read_text())}"
    except (OSError, ValueError):
        return None


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _run(args: list[str], env: dict[str, str], what: str, timeout: float = 300) -> None:
    run_checked(
        [_airflow_executable(), *args],
        what,
        timeout=timeout,
        env=env,
        error=AirflowLocalError,
        tail=2000,
    )


def prepare(port: int, progress=print) -> dict[str, str]:
    """Warehouse, metadata database, migrations, pools and manifest; returns the env."""
    from elt import config as elt_config
    from orchestration.airflow import manifest, pools

    conn = settings.warehouse()
    environment.ensure_metadata_database(conn)
    env = {**os.environ, **environment.server_env(conn, port)}
    progress("migrating Airflow's metadata database…")
    _run(["db", "migrate"], env, "airflow db migrate")
    os.environ.update(env)  # this process now talks to that database too (pools)
    progress("syncing pools…")
    config = elt_config.load()
    pools.sync_pools(config)
    progress("building the dbt manifests (dbt parse)…")
    for project in manifest.projects_of(config):
        manifest.parse_manifest(project)
    return env


def up(port: int = DEFAULT_PORT, progress=print) -> str:
    """Start the local Airflow (idempotent); returns the UI URL."""
    running = [s.name for s in services() if s.running]
    if running:
        url = ui_url()
        if len(running) == len(PROCESSES) and url:
            return url
        raise AirflowLocalError(
            f"part of Airflow is running ({', '.join(running)}): run `elt airflow down` first"
        )
    if not _port_free(port):
        raise AirflowLocalError(f"port {port} on 127.0.0.1 is taken: pass another --port")
    env = prepare(port, progress)
    for name, args in PROCESSES.items():
        _spawn(name, args, env)
    port_file().write_text(str(port))
    progress("waiting for the api-server…")
    _wait_ready(port)
    return f"http://127.0.0.1:{port}"


def _spawn(name: str, args: list[str], env: dict[str, str]) -> int:
    log = log_dir() / f"{name}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [_airflow_executable(), *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: `down` stops its children too
        )
    (run_dir() / f"{name}.pid").write_text(str(process.pid))
    return process.pid


def _wait_ready(port: int) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    url = f"http://127.0.0.1:{port}/api/v2/monitor/health"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, OSError):
            pass
        if not all(s.running for s in services()):
            break
        time.sleep(1)
    dead = [s for s in services() if not s.running]
    where = ", ".join(str(s.log) for s in dead) or str(log_dir())
    raise AirflowLocalError(f"Airflow did not come up on 127.0.0.1:{port}; see {where}")


def down() -> list[str]:
    """Stop the processes :func:`up` started (by their PIDs); returns the stopped names."""
    stopped = []
    for service in services():
        if service.running:
            _stop(service.pid)
            stopped.append(service.name)
        (run_dir() / f"{service.name}.pid").unlink(missing_ok=True)
    port_file().unlink(missing_ok=True)
    return stopped


def _stop(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline and _is_airflow(pid):
        time.sleep(0.5)
    if _is_airflow(pid):
        os.killpg(pid, signal.SIGKILL)
