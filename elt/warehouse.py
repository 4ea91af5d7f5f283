"""The embedded warehouse: a project-managed PostgreSQL 16 under ``.elt/pg``.

It listens on 127.0.0.1 only (no unix socket), authenticates with scram-sha-256 and a
generated password kept in ``.elt/warehouse.password`` (mode 0600, never printed), and uses
the PostgreSQL binaries shipped in the ``pgserver`` wheel, so a fresh machine needs nothing
but Python. PostgreSQL refuses to run as root: when we are root, the server runs as the
unprivileged system user ``eltpg``, created on first use.

``ensure_running()`` is what other commands call: it is safe to call twice or concurrently
(a file lock serialises starts) and it recovers from a crash (a stale ``postmaster.pid`` is
removed when no server owns it).
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import psutil

from elt import paths
from elt.settings import Connection

SUPERUSER = "elt"
DATABASE = "warehouse"
SYSTEM_USER = "eltpg"
START_TIMEOUT_S = 60


class WarehouseError(RuntimeError):
    """The embedded warehouse could not be started, stopped or reached."""


@dataclass(frozen=True)
class Status:
    """What `elt status` shows."""

    running: bool
    pid: int | None
    port: int | None
    data_dir: Path
    url: str | None  # display URL, password masked


def data_dir() -> Path:
    """The PostgreSQL data directory."""
    return paths.state_dir() / "pg"


def _meta_file() -> Path:
    return paths.state_dir() / "warehouse.json"


def _password_file() -> Path:
    return paths.state_dir() / "warehouse.password"


def _log_file() -> Path:
    return paths.state_dir() / "pg.log"


def bin_dir() -> Path:
    """PostgreSQL binaries: ``ELT_PG_BIN`` if set, else those inside the pgserver wheel."""
    override = os.environ.get("ELT_PG_BIN")
    if override:
        return Path(override)
    import importlib.util

    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise WarehouseError("the pgserver package is not installed: run `make setup`")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


# -- running as an unprivileged user -------------------------------------------------------


def _is_root() -> bool:
    return os.geteuid() == 0


def _ensure_system_user() -> None:
    import pwd

    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SYSTEM_USER,
            ],
            check=True,
            capture_output=True,
        )


def _allow_traverse(path: Path) -> None:
    """Let the server user reach ``path``: add search (x) permission on every parent folder.

    Only the execute bit is added (no listing), the same thing pgserver does.
    """
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def _run_pg(
    args: list[str], *, timeout: float = 30, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL binary, as the unprivileged user when we are root."""
    command = [str(bin_dir() / args[0]), *args[1:]]
    if _is_root():
        command = ["runuser", "-u", SYSTEM_USER, "--", *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise WarehouseError(
            f"`{args[0]} {' '.join(args[1:3])}` failed (exit {result.returncode}): "
            f"{(result.stderr or result.stdout).strip()[-800:]}\n"
            f"Server log: {_log_file()}"
        )
    return result


# -- state ----------------------------------------------------------------------------------


def _read_meta() -> dict[str, Any]:
    try:
        return cast(dict[str, Any], json.loads(_meta_file().read_text()))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _write_meta(meta: dict[str, Any]) -> None:
    _meta_file().write_text(json.dumps(meta, indent=2) + "\n")


def _password() -> str:
    path = _password_file()
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(24))
    return path.read_text().strip()


def stored_password() -> str | None:
    """The embedded warehouse's password if one was generated (for redaction)."""
    path = _password_file()
    return path.read_text().strip() if path.exists() else None


def _port_is_free(port: int) -> bool:
    """True when PostgreSQL could listen on ``port``.

    The probe binds with ``SO_REUSEADDR`` as PostgreSQL does: connections of a stopped server
    left in TIME-WAIT do not keep the port from it, and must not make the port look taken.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _choose_port(meta: dict[str, Any]) -> int:
    """``ELT_WAREHOUSE_PORT``, else the port kept since the first start, else a free one.

    The kept port never moves silently: settings derived from it (the demo's ``SHOP_DB_URL``,
    a psql session, a BI tool) would point at nothing. When another program holds it, fail.
    """
    configured = os.environ.get("ELT_WAREHOUSE_PORT")
    if configured:
        return int(configured)
    stored = meta.get("port")
    if not stored:
        return _free_port()
    # after a crash the old server's children may hold the port for a moment
    deadline = time.monotonic() + 5
    while not _port_is_free(int(stored)):
        if time.monotonic() > deadline:
            raise WarehouseError(
                f"port {stored} of the embedded warehouse (kept in {_meta_file()}) is taken by "
                "another program: stop that program, or set ELT_WAREHOUSE_PORT to another port"
            )
        time.sleep(0.2)
    return int(stored)


@contextmanager
def _start_lock() -> Iterator[None]:
    """Serialise start/stop across processes (two `elt up` at once are safe)."""
    lock_path = paths.state_dir() / "warehouse.lock"
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# -- lifecycle ------------------------------------------------------------------------------


def kept_port() -> int | None:
    """The port the embedded warehouse keeps (chosen at its first start), if it ever started."""
    port = _read_meta().get("port")
    return int(port) if port else None


def connection(database: str = DATABASE) -> Connection:
    """Connection settings of the embedded server (it may not be running)."""
    meta = _read_meta()
    return Connection(
        host="127.0.0.1",
        port=int(meta.get("port", 0)),
        user=SUPERUSER,
        password=_password(),
        database=database,
    )


def _initdb() -> None:
    pgdata = data_dir()
    if (pgdata / "PG_VERSION").exists():
        return
    if pgdata.exists():
        shutil.rmtree(pgdata)  # a half-initialised folder from an interrupted initdb
    pgdata.mkdir(mode=0o700, parents=True)
    pwfile = paths.state_dir() / ".initpw"
    pwfile.write_text(_password() + "\n")
    pwfile.chmod(0o600)
    if _is_root():
        _ensure_system_user()
        _allow_traverse(pgdata.parent)
        _allow_traverse(bin_dir())
        shutil.chown(pgdata, user=SYSTEM_USER)
        shutil.chown(pwfile, user=SYSTEM_USER)
    try:
        _run_pg(
            [
                "initdb",
                "-D",
                str(pgdata),
                "-U",
                SUPERUSER,
                f"--pwfile={pwfile}",
                "--auth-host=scram-sha-256",
                "--auth-local=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
            ],
            timeout=120,
        )
    finally:
        pwfile.unlink(missing_ok=True)
    with open(pgdata / "postgresql.conf", "a") as conf:
        conf.write(
            "\n# written by elt.warehouse\n"
            "listen_addresses = '127.0.0.1'\n"
            "unix_socket_directories = ''\n"
            "shared_buffers = 256MB\n"
            "max_connections = 200\n"
            "logging_collector = off\n"
        )


def _postmaster_pid() -> int | None:
    pid_file = data_dir() / "postmaster.pid"
    try:
        return int(pid_file.read_text().splitlines()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None


def _server_pid() -> int | None:
    """PID of a postgres server running on our data directory, else None."""
    pid = _postmaster_pid()
    if pid is None:
        return None
    try:
        process = psutil.Process(pid)
        running = process.is_running() and process.status() != psutil.STATUS_ZOMBIE
        return pid if running and "postgres" in process.name() else None
    except psutil.Error:
        return None


def _remove_stale_pid_file() -> None:
    pid_file = data_dir() / "postmaster.pid"
    if pid_file.exists() and _server_pid() is None:
        pid_file.unlink()


def _ensure_database(conn: Connection) -> None:
    import psycopg2

    pg = psycopg2.connect(conn.url("postgres"), connect_timeout=10)
    try:
        pg.autocommit = True
        with pg.cursor() as cur:
            cur.execute("select 1 from pg_database where datname = %s", (conn.database,))
            if cur.fetchone() is None:
                cur.execute(f'create database "{conn.database}"')
    finally:
        pg.close()


def _start_server(port: int) -> None:
    log = _log_file()
    if _is_root():
        log.touch()
        shutil.chown(log, user=SYSTEM_USER)
    # A killed server can leave children holding shared memory for a moment: retry briefly.
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        result = _run_pg(
            [
                "pg_ctl",
                "-D",
                str(data_dir()),
                "-l",
                str(log),
                "-w",
                "-t",
                "30",
                "-o",
                f"-p {port}",
                "start",
            ],
            timeout=45,
            check=False,
        )
        if result.returncode == 0:
            return
        if time.monotonic() > deadline:
            tail = log.read_text()[-1500:] if log.exists() else result.stderr
            raise WarehouseError(
                f"the embedded PostgreSQL did not start on 127.0.0.1:{port}.\n{tail}\n"
                f"Full log: {log}. If another program holds the port, set ELT_WAREHOUSE_PORT."
            )
        _remove_stale_pid_file()
        time.sleep(1)


# data folder → PID of the server whose database and roles this process has made sure of.
# Checking them takes two connections; every task of an orchestrated run asks for the
# warehouse (a 600-node Airflow DAG run in one process: 1,200 times), so once per server is
# enough — a server stopped and started again has another PID and is checked again.
_ENSURED: dict[Path, int] = {}


def ensure_running() -> Connection:
    """Start the embedded warehouse unless it already runs; return its connection."""
    pid = _server_pid()
    if pid is not None and _ENSURED.get(data_dir()) == pid:
        return connection()
    with _start_lock():
        _initdb()
        meta = _read_meta()
        if _server_pid() is None:
            _remove_stale_pid_file()
            port = _choose_port(meta)
            _start_server(port)
            _write_meta({**meta, "port": port})
        conn = connection()
        _ensure_database(conn)
        _ensure_roles(conn)
        pid = _server_pid()
        if pid is not None:
            _ENSURED[data_dir()] = pid
        return conn


def _ensure_roles(conn: Connection) -> None:
    """The least-privilege roles (elt.roles), created once per warehouse."""
    from elt import roles

    if not roles.roles_ready(conn):
        roles.ensure_roles(conn)


def stop() -> bool:
    """Stop the embedded warehouse; True when a running server was stopped."""
    with _start_lock():
        _ENSURED.pop(data_dir(), None)
        if _server_pid() is None:
            _remove_stale_pid_file()
            return False
        _run_pg(
            ["pg_ctl", "-D", str(data_dir()), "-m", "fast", "-w", "-t", "60", "stop"], timeout=90
        )
        return True


def status() -> Status:
    """Whether the embedded warehouse runs, and where."""
    pid = _server_pid()
    meta = _read_meta()
    port = meta.get("port")
    url = connection().display_url() if port else None
    return Status(running=pid is not None, pid=pid, port=port, data_dir=data_dir(), url=url)


def destroy() -> None:
    """Stop the server and delete its data (``elt down --purge``, ``make clean``)."""
    stop()
    shutil.rmtree(data_dir(), ignore_errors=True)
    for path in (_meta_file(), _password_file(), _log_file()):
        path.unlink(missing_ok=True)
