"""A second, throwaway PostgreSQL server for fault tests: started, stopped and restarted on
the same port with :mod:`elt.warehouse` under its own state folder.

    instance = PgInstance(server_home("source"))
    url = instance.start()          # the server's warehouse database, superuser URL
    instance.restart()              # fast stop (connections are cut), start on the same port
    instance.destroy()              # stopped, its folder deleted

The test session's own warehouse (the ``pg`` fixture) is never touched.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from elt import paths, settings, warehouse
from tests.helpers.process_env import environ


def server_home(name: str) -> Path:
    """A fresh state folder for a server of its own under the session's ``ELT_HOME``. Not
    under pytest's tmp folder: pytest makes that 0700 again at every session start, and the
    server runs as another user (``eltpg``) when we are root."""
    home = paths.state_dir() / "servers" / name
    if home.exists():
        with _state_folder(home, None):
            warehouse.destroy()
        shutil.rmtree(home)
    home.mkdir(parents=True)
    return home


@contextmanager
def _state_folder(home: Path, port: int | None) -> Iterator[None]:
    """``ELT_HOME`` set to ``home`` and, once known, the port pinned: elt.warehouse's own
    free-port probe would refuse a port that the cut connections left in TIME_WAIT, which
    PostgreSQL itself binds again without trouble."""
    wanted = {"ELT_HOME": str(home)}
    if port is not None:
        wanted["ELT_WAREHOUSE_PORT"] = str(port)
    with environ(wanted, drop=("ELT_WAREHOUSE_URL",)):
        yield


class PgInstance:
    """An embedded PostgreSQL whose state lives in ``home`` (its own data folder and port)."""

    def __init__(self, home: Path):
        self.home = home
        self.port: int | None = None

    def start(self) -> str:
        """Start the server (initialising it on first use); returns the superuser URL."""
        with _state_folder(self.home, self.port):
            conn = warehouse.ensure_running()
        if self.port is not None and conn.port != self.port:
            raise AssertionError(f"restarted on port {conn.port}, not {self.port}")
        self.port = conn.port
        return conn.url()

    def stop(self) -> None:
        """Fast shutdown: open sessions are terminated, as in a database restart."""
        with _state_folder(self.home, self.port):
            warehouse.stop()

    def destroy(self) -> None:
        """Stop the server and delete its state folder."""
        with _state_folder(self.home, self.port):
            warehouse.destroy()
        shutil.rmtree(self.home, ignore_errors=True)

    def restart(self) -> str:
        """Stop, then start on the same port; returns the URL."""
        self.stop()
        return self.start()

    def env(self) -> dict[str, str]:
        """Environment for a subprocess whose warehouse is this server (``ELT_HOME``)."""
        env = {**os.environ, "ELT_HOME": str(self.home)}
        # tool homes an earlier in-process run exported would point outside this home
        for key in ("ELT_WAREHOUSE_URL", *settings.tool_homes()):
            env.pop(key, None)
        if self.port is not None:
            env["ELT_WAREHOUSE_PORT"] = str(self.port)
        return env
