"""What the run-lifecycle tests share: a process holding a pipeline, killing it (at the
right moment), freeing
every pipeline between tests, and `elt prefect serve` in the background."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from elt import paths
from tests.helpers.warehouse import rows


def hold(pipeline: str, orchestrator: str) -> tuple[subprocess.Popen, str]:
    """A process holding ``pipeline`` as a live run of ``orchestrator``; and its run id."""
    holder = subprocess.Popen(
        [sys.executable, "-m", "tests.helpers.hold_run", pipeline, orchestrator],
        cwd=paths.project_root(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = holder.stdout.readline()  # blocks until the lease is taken (or the process died)
    assert line.startswith("held "), holder.stderr.read() if holder.poll() is not None else line
    return holder, line.split()[1]


def kill(process: subprocess.Popen) -> None:
    """SIGKILL, by PID, and reap it."""
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


def kill_when(process: subprocess.Popen, ready: Callable[[], bool], deadline_s: float) -> None:
    """SIGKILL ``process`` by PID as soon as ``ready()`` (polled, at most ``deadline_s``);
    fails when the process ends first or the moment never comes."""
    deadline = time.monotonic() + deadline_s
    while not ready():
        if process.poll() is not None:
            said = process.stdout.read() if process.stdout else ""
            raise AssertionError(
                f"the process finished (exit {process.returncode}) before it could be killed:"
                f" {said[-2000:]}"
            )
        assert time.monotonic() < deadline, "the moment to kill never came"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL


def free_pipelines(url: str) -> None:
    """Close every running run and drop every lease (a killed Airflow-style holder keeps its
    lease for the task-gap allowance): the next test starts with the pipelines free."""
    rows(
        url,
        "update elt_meta.runs set status = 'failed' where status = 'running';"
        " delete from elt_meta.leases",
    )


def start_serve(pipelines: list[str], log: Path) -> subprocess.Popen:
    """`elt prefect serve PIPELINES…` in the background, its output in ``log``."""
    command = [sys.executable, "-c", "from orchestration.prefect.cli import app; app()"]
    with log.open("wb") as out:
        return subprocess.Popen(
            [*command, "serve", *pipelines],
            cwd=paths.project_root(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
