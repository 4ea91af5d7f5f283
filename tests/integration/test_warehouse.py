"""The embedded warehouse: start, stop, restart, crash recovery, stale lock, secrets."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg2
import pytest

from elt import paths, settings, warehouse

pytestmark = pytest.mark.integration


@pytest.fixture
def own_home(monkeypatch) -> Path:
    """A warehouse of its own, so lifecycle tests never disturb the session's `pg`."""
    home = paths.project_root() / ".elt" / "test-lifecycle"
    monkeypatch.setenv("ELT_HOME", str(home))
    yield home
    warehouse.destroy()


def _query(conn: settings.Connection, sql: str):
    with psycopg2.connect(conn.url(), connect_timeout=5) as db, db.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall() if cur.description else None


def test_start_is_idempotent_and_password_protected(own_home):
    first = warehouse.ensure_running()
    pid = warehouse.status().pid
    second = warehouse.ensure_running()
    assert warehouse.status().pid == pid
    assert second.port == first.port
    assert _query(first, "show listen_addresses") == [("127.0.0.1",)]
    assert _query(first, "select current_database()") == [("warehouse",)]
    wrong = first.url().replace(first.password, "not-the-password")
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(wrong, connect_timeout=5)
    mode = stat.S_IMODE((own_home / "warehouse.password").stat().st_mode)
    assert mode == 0o600


def test_concurrent_starts_give_one_server(own_home):
    with ThreadPoolExecutor(max_workers=3) as pool:
        ports = {conn.port for conn in pool.map(lambda _: warehouse.ensure_running(), range(3))}
    assert len(ports) == 1
    assert warehouse.status().running


def test_data_survives_stop_and_restart(own_home):
    conn = warehouse.ensure_running()
    _query(conn, "create table kept (id int); insert into kept values (1), (2)")
    assert warehouse.stop() is True
    assert warehouse.status().running is False
    assert warehouse.stop() is False  # stopping twice is fine
    conn = warehouse.ensure_running()
    assert _query(conn, "select count(*) from kept") == [(2,)]


def test_recovers_after_the_server_is_killed(own_home):
    conn = warehouse.ensure_running()
    _query(conn, "create table survivor (id int); insert into survivor values (7)")
    os.kill(warehouse.status().pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while warehouse.status().running and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not warehouse.status().running
    assert (warehouse.data_dir() / "postmaster.pid").exists()  # the stale lock is left behind
    conn = warehouse.ensure_running()
    assert warehouse.status().running
    assert _query(conn, "select id from survivor") == [(7,)]


def test_stale_pid_file_of_a_dead_process_is_replaced(own_home):
    warehouse.ensure_running()
    warehouse.stop()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    pid_file = warehouse.data_dir() / "postmaster.pid"
    pid_file.write_text(f"{dead.pid}\n{warehouse.data_dir()}\n")
    conn = warehouse.ensure_running()
    assert _query(conn, "select 1") == [(1,)]


def _elt(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "elt.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )


def test_cli_up_status_env_down_never_print_the_password(own_home):
    env = {"ELT_HOME": str(own_home), "COLUMNS": "200"}
    up = _elt("up", env=env)
    assert up.returncode == 0, up.stderr
    password = (own_home / "warehouse.password").read_text().strip()
    status = _elt("status", env=env)
    assert status.returncode == 0
    assert "127.0.0.1" in status.stdout and "***" in status.stdout
    exports = _elt("env", env=env)
    assert "export PGPORT=" in exports.stdout and "export PGPASSFILE=" in exports.stdout
    for output in (up.stdout + up.stderr, status.stdout, exports.stdout):
        assert password not in output
    # psql by hand works with the exported variables (the password comes from PGPASSFILE)
    shell = f'eval "$({sys.executable} -m elt.cli env)" && psql -tAc "select 40 + 2"'
    psql = subprocess.run(
        ["bash", "-c", shell], capture_output=True, text=True, env={**os.environ, **env}
    )
    assert psql.stdout.strip() == "42", psql.stderr
    down = _elt("down", env=env)
    assert down.returncode == 0 and "stopped" in down.stdout
    assert _elt("status", env=env).returncode == 3  # not running


def test_external_url_starts_nothing_local(own_home, pg):
    env = {"ELT_HOME": str(own_home), "ELT_WAREHOUSE_URL": pg.url()}
    status = _elt("status", env=env)
    assert status.returncode == 0
    assert f"127.0.0.1:{pg.port}/warehouse" in status.stdout
    assert pg.password not in status.stdout
    assert not (own_home / "pg").exists()


def test_bad_external_url_names_the_variable_not_the_value(own_home):
    env = {"ELT_HOME": str(own_home), "ELT_WAREHOUSE_URL": "mysql://u:sekret-value@h/db"}
    result = _elt("status", env=env)
    assert result.returncode == 1
    assert "ELT_WAREHOUSE_URL must be a postgresql:// URL" in result.stderr
    assert "sekret-value" not in result.stderr


def test_port_is_kept_across_down_and_up_with_sessions_still_open(own_home):
    conn = warehouse.ensure_running()
    # sessions open (a psql, a BI tool) while the server stops: the server closes them first,
    # so their sockets on the server's port linger (FIN-WAIT-2, then TIME-WAIT) while the
    # clients have not noticed; the probe must bind as PostgreSQL does to ignore them
    sessions = [psycopg2.connect(conn.url(), connect_timeout=5) for _ in range(3)]
    try:
        assert warehouse.stop() is True
        again = warehouse.ensure_running()
    finally:
        for session in sessions:
            session.close()
    assert again.port == conn.port
    assert _query(again, "select 1") == [(1,)]


def test_a_taken_port_fails_clearly_instead_of_moving(own_home):
    import socket

    conn = warehouse.ensure_running()
    warehouse.stop()
    with socket.socket() as squatter:  # another program now listens on the kept port
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", conn.port))
        squatter.listen()
        with pytest.raises(warehouse.WarehouseError, match=f"port {conn.port} .* is taken"):
            warehouse.ensure_running()
    assert warehouse.kept_port() == conn.port
    assert warehouse.ensure_running().port == conn.port  # free again: the same port


def test_database_and_roles_are_checked_once_per_server(own_home, monkeypatch):
    """Every orchestrated task asks for the warehouse: the two connections that make sure of
    its database and roles are made once per server a process sees, not on every call."""
    checks: list[int] = []
    real = warehouse._ensure_database
    monkeypatch.setattr(
        warehouse, "_ensure_database", lambda conn: (checks.append(conn.port), real(conn))
    )
    first = warehouse.ensure_running()
    for _ in range(3):
        assert warehouse.ensure_running() == first
    assert len(checks) == 1
    assert _query(first, "select current_database()") == [(first.database,)]
    # a server stopped and started again (another PID) is checked again
    warehouse.stop()
    again = warehouse.ensure_running()
    assert len(checks) == 2
    assert _query(again, "select 1") == [(1,)]
