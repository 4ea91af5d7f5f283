"""A local Airflow for the project: api-server (UI on 127.0.0.1), scheduler, dag-processor.

``up()`` starts the warehouse, creates Airflow's metadata database ``airflow`` on it,
migrates it, syncs the pools, builds the dbt manifest and starts the three processes in the
background (``AIRFLOW_HOME`` = ``.elt/airflow``, logs in ``.elt/airflow/logs``, one PID
file each in ``.elt/airflow/run``). Tasks run in the scheduler's LocalExecutor by default;
``executor="celery"`` starts a Redis broker on 127.0.0.1 and Celery workers that share
nothing on disk (:mod:`orchestration.airflow.celery_workers`). ``down()`` stops exactly the
processes it started, by PID.
"""

from __future__ import annotations

import os
import shutil
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
EXECUTORS = ("local", "celery")
DEFAULT_PORT = 8080
DEFAULT_WORKERS = 2
BROKER = "redis"
READY_TIMEOUT_S = 180
STOP_TIMEOUT_S = 30


class AirflowLocalError(RuntimeError):
    """The local Airflow could not be started or stopped; the message says why."""


@dataclass(frozen=True)
class Service:
    """One background process :func:`up` started."""

    name: str
    pid: int | None
    log: Path
    started: float | None = None  # the process's create time, as recorded at spawn

    @property
    def running(self) -> bool:
        """True when the PID is alive and is still the process we started (Celery renames
        its processes, so the command line cannot tell; the create time can)."""
        return self.pid is not None and _is_ours(self.pid, self.started)


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


def service_command(name: str, executor: str = "local") -> list[str]:
    """The command line of one of :data:`PROCESSES`. The LocalExecutor's scheduler imports the
    task modules first (:mod:`orchestration.airflow.preload`): the workers it forks, and each
    task process they fork, inherit them instead of importing them again per task."""
    if name == "scheduler" and executor == "local":
        return [sys.executable, "-m", "orchestration.airflow.preload", *PROCESSES[name]]
    return [_airflow_executable(), *PROCESSES[name]]


def _is_ours(pid: int, started: float | None) -> bool:
    try:
        process = psutil.Process(pid)
        alive = process.is_running() and process.status() != psutil.STATUS_ZOMBIE
        return alive and (started is None or abs(process.create_time() - started) < 0.01)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def services() -> list[Service]:
    """The three Airflow services, then the broker and workers when Celery was started."""
    extra = sorted(p.stem for p in run_dir().glob("*.pid") if p.stem not in PROCESSES)
    found = []
    for name in [*PROCESSES, *extra]:
        try:
            pid, started = (run_dir() / f"{name}.pid").read_text().split()
            found.append(Service(name, int(pid), log_dir() / f"{name}.log", float(started)))
        except (OSError, ValueError):
            found.append(Service(name, None, log_dir() / f"{name}.log"))
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


def prepare(port: int, progress=print) -> tuple[dict[str, str], settings.Connection]:
    """Warehouse, metadata database, migrations, pools and manifest; returns env and warehouse."""
    from elt import config as elt_config
    from orchestration.airflow import manifest

    conn = settings.warehouse()
    environment.ensure_metadata_database(conn)
    env = {**os.environ, **environment.server_env(conn, port)}
    progress("migrating Airflow's metadata database…")
    _run(["db", "migrate"], env, "airflow db migrate")
    os.environ.update(env)
    progress("syncing pools…")
    # in a child process: Airflow binds its ORM to a database once per process, and this
    # process may have imported Airflow before (a test run, an earlier `up`)
    run_checked(
        [str(Path(sys.executable).with_name("elt")), "airflow", "sync-pools"],
        "elt airflow sync-pools",
        timeout=120,
        env=env,
        error=AirflowLocalError,
        tail=2000,
    )
    config = elt_config.load()
    progress("building the dbt manifests (dbt parse)…")
    for project in manifest.projects_of(config):
        manifest.parse_manifest(project)
    return env, conn


def up(
    port: int = DEFAULT_PORT,
    progress=print,
    *,
    executor: str = "local",
    workers: int = DEFAULT_WORKERS,
) -> str:
    """Start the local Airflow (idempotent); returns the UI URL.

    ``executor="celery"`` adds a Redis broker and ``workers`` Celery workers, each serving the
    ``default`` queue and its own (``worker-1`` …).
    """
    if executor not in EXECUTORS:
        raise AirflowLocalError(f"unknown executor {executor!r}; choose {' or '.join(EXECUTORS)}")
    running = [s.name for s in services() if s.running]
    if running:
        url = ui_url()
        if set(PROCESSES) <= set(running) and url:
            return url
        raise AirflowLocalError(
            f"part of Airflow is running ({', '.join(running)}): run `elt airflow down` first"
        )
    if not _port_free(port):
        raise AirflowLocalError(f"port {port} on 127.0.0.1 is taken: pass another --port")
    if executor == "celery" and not shutil.which("redis-server"):
        raise AirflowLocalError(
            "redis-server is missing (the Celery broker): run `make redis`"
            " (or `apt-get install redis-server`)"
        )
    env, conn = prepare(port, progress)
    if executor == "celery":
        env = _start_celery(env, conn, workers, progress)
    for name in PROCESSES:
        _spawn(name, service_command(name, executor), env)
    port_file().write_text(str(port))
    progress("waiting for the api-server…")
    _wait_ready(port)
    return f"http://127.0.0.1:{port}"


def _start_celery(
    env: dict[str, str], conn: settings.Connection, workers: int, progress
) -> dict[str, str]:
    """Start the broker and the workers; returns the server env with the CeleryExecutor."""
    from orchestration.airflow import celery_workers

    if workers < 1:
        raise AirflowLocalError("--workers must be at least 1")
    port = celery_workers.free_port()
    config = celery_workers.redis_config(run_dir(), port)
    progress(f"starting Redis on 127.0.0.1:{port}…")
    _spawn(BROKER, [shutil.which("redis-server") or "redis-server", str(config)], env)
    _wait_port(port, BROKER)
    env = {
        **env,
        **celery_workers.executor_env(
            celery_workers.broker_url(config), environment.metadata_url(conn)
        ),
    }
    for name in celery_workers.worker_names(workers):
        progress(f"starting Celery {name} in {celery_workers.workers_dir() / name}…")
        worker_env = celery_workers.worker_env(env, name, conn)
        command = [
            _airflow_executable(),
            *("celery", "worker", "--celery-hostname", f"{name}@%h"),
            *("--queues", f"default,{name}", "--skip-serve-logs"),
        ]
        _spawn(name, command, worker_env, cwd=celery_workers.workers_dir() / name)
    return env


def _wait_port(port: int, name: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        if not any(s.running for s in services() if s.name == name):
            break
        time.sleep(0.2)
    raise AirflowLocalError(
        f"{name} did not listen on 127.0.0.1:{port}; see {log_dir()}/{name}.log"
    )


def _spawn(name: str, command: list[str], env: dict[str, str], cwd: Path | None = None) -> int:
    log = log_dir() / f"{name}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            command,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: `down` stops its children too
        )
    started = psutil.Process(process.pid).create_time()
    (run_dir() / f"{name}.pid").write_text(f"{process.pid} {started!r}")
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
    """Stop the processes :func:`up` started (by their PIDs); returns the stopped names.

    Workers first (their running tasks end), the broker last.
    """
    order = sorted(services(), key=lambda s: (s.name == BROKER, s.name in PROCESSES))
    stopped = []
    for service in order:
        if service.running:
            _stop(service)
            stopped.append(service.name)
        (run_dir() / f"{service.name}.pid").unlink(missing_ok=True)
    port_file().unlink(missing_ok=True)
    (run_dir() / "redis.conf").unlink(missing_ok=True)
    return stopped


def _stop(service: Service) -> None:
    try:
        os.killpg(service.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline and service.running:
        time.sleep(0.5)
    if service.running:
        os.killpg(service.pid, signal.SIGKILL)
