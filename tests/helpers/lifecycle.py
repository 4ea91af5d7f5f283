"""What the run-lifecycle tests share: a process holding a pipeline, killing it, freeing
every pipeline between tests, and `elt prefect serve` in the background."""

from __future__ import annotations

import signal
import subprocess
import sys
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
