"""Small process helpers shared by tests: a temporarily changed environment, a captured run."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def environ(values: Mapping[str, str], *, drop: tuple[str, ...] = ()) -> Iterator[None]:
    """``os.environ`` with ``values`` set and ``drop`` removed; restored afterwards."""
    saved = {key: os.environ.get(key) for key in (*values, *drop)}
    for key in drop:
        os.environ.pop(key, None)
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_captured(
    command: list[str], env: Mapping[str, str], cwd: Path, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run ``command`` to completion (bounded by ``timeout``), stdout and stderr in one text."""
    return subprocess.run(
        command,
        env=dict(env),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def elt_command(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``elt ARGS`` in a child process with this process's environment (stdout and stderr
    apart), from the project folder."""
    import sys

    from elt import paths

    return subprocess.run(
        [sys.executable, "-c", "from elt.cli import app; app()", *args],
        cwd=paths.project_root(),
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
