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
