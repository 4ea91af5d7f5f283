"""Session fixtures shared by every test: an isolated state folder and a real PostgreSQL.

Tests never touch the developer's `.elt/`: the session uses `.elt/test/` (``ELT_HOME``),
with its own embedded warehouse, stopped by PID at the end of the session; under pytest-xdist
each worker has its own (`.elt/test-gw0/`, …), so workers share no server, port or file.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass

import pytest

from elt import paths

pytest_plugins = ["tests.helpers.suite_record"]

_HOME = os.environ.get("ELT_HOME") or str(paths.project_root() / ".elt" / "test")
# one state folder (and embedded warehouse) per pytest-xdist worker: test-gw0, test-gw1…
# (a worker inherits the controller's ELT_HOME, so the suffix is always added)
_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
os.environ["ELT_HOME"] = f"{_HOME}-{_WORKER}" if _WORKER else _HOME
if _WORKER:  # xdist sets an 80×24 terminal, which Rich consoles would keep for good
    os.environ.pop("COLUMNS", None)
    os.environ.pop("LINES", None)
# tests always use their own embedded warehouse, never an external one from the shell
os.environ.pop("ELT_WAREHOUSE_URL", None)


@pytest.fixture(autouse=True)
def _restore_environment():
    """In-process runs export tool settings (AIRFLOW_HOME, PG*): undo them after each test."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="module")
def demo_sources(pg):
    """Small demo sources on the test server (an empty warehouse to start with), their
    settings in the environment and the demo API running, for one test module."""
    from elt import demo, settings
    from tests.helpers.warehouse import DEMO_KEYS, reset_warehouse

    reset_warehouse(pg.url())
    summary = demo.prepare(years=0.03, seed=7, admin_url=pg.url())
    saved = {key: os.environ.pop(key, None) for key in DEMO_KEYS}
    settings.load_local_env()
    demo.start_api()
    yield summary
    demo.stop_api()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@dataclass
class PgServer:
    """The test session's PostgreSQL server (superuser credentials)."""

    host: str
    port: int
    user: str
    password: str
    database: str

    def url(self, database: str | None = None, driver: str = "postgresql") -> str:
        """URL of ``database`` (default: the warehouse database) with credentials."""
        return self._conn().url(database, driver=driver)

    def _conn(self):
        from elt.settings import Connection

        return Connection(self.host, self.port, self.user, self.password, self.database)

    def create_database(self, name: str) -> str:
        """Drop and recreate ``name`` on the server; returns its URL."""
        import psycopg2

        admin = psycopg2.connect(self.url("postgres"))
        admin.autocommit = True
        try:
            with admin.cursor() as cur:
                cur.execute(f'drop database if exists "{name}" with (force)')
                cur.execute(f'create database "{name}"')
        finally:
            admin.close()
        from elt import roles

        if roles.in_use():  # runs load and build as the least-privilege roles there too
            # (sources live in such databases too: their own logins keep connecting)
            roles.ensure_roles(self._conn().with_database(name), lock_out_others=False)
        return self.url(name)


@pytest.fixture(scope="session")
def pg() -> PgServer:
    """A running PostgreSQL for the whole session (the embedded warehouse in .elt/test).

    Several pytest sessions may share it (a developer running two suites at once): each
    holds a shared lock while it runs, and the last one out stops the server.
    """
    from elt import warehouse

    users = open(paths.state_dir() / "pg-sessions.lock", "w")  # noqa: SIM115 - held all session
    fcntl.flock(users, fcntl.LOCK_SH)
    conn = warehouse.ensure_running()
    yield PgServer(conn.host, conn.port, conn.user, conn.password, conn.database)
    try:
        fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        users.close()  # another session still uses the server
        return
    warehouse.stop()
    users.close()
