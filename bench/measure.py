"""Run one benchmark variant in a fresh process; time it and sample the process tree's memory.

Peak RSS is the largest sum of the resident memory of the child and all its descendants
(psql pipes, dlt workers), sampled every ``SAMPLE_EVERY_S``. The PostgreSQL server's own
backends are not descendants and are not counted, for every variant alike.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psutil

SAMPLE_EVERY_S = 0.02
MIB = 1024 * 1024


class VariantFailed(RuntimeError):
    """A variant's process exited with an error; the message holds its output's tail."""


@dataclass
class Sample:
    """One measured run: wall time of the process, peak RSS of its tree, what it reported."""

    wall_s: float
    peak_rss_mib: float
    result: dict[str, Any] = field(default_factory=dict)


def tree_rss(process: psutil.Process) -> int:
    """Resident bytes of ``process`` and all its descendants (vanished ones count as 0)."""
    total = 0
    try:
        members = [process, *process.children(recursive=True)]
    except psutil.Error:
        return 0
    for member in members:
        try:
            total += member.memory_info().rss
        except psutil.Error:
            continue
    return total


class PeakSampler(threading.Thread):
    """Samples :func:`tree_rss` of one pid until :meth:`stop`; ``peak`` holds the maximum."""

    def __init__(self, pid: int, every_s: float = SAMPLE_EVERY_S) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.every_s = every_s
        self.peak = 0
        self._done = threading.Event()

    def run(self) -> None:
        """Sample until stopped."""
        while not self._done.is_set():
            self.peak = max(self.peak, tree_rss(self.process))
            self._done.wait(self.every_s)

    def stop(self) -> int:
        """Stop sampling; returns the peak in bytes."""
        self._done.set()
        self.join(timeout=5)
        return self.peak


def _run_sampled(
    command: list[str],
    env: dict[str, str],
    cwd: Path | None,
    timeout_s: float,
    out: IO[bytes],
    err: IO[bytes],
) -> tuple[int, float, int]:
    """Run ``command`` writing to the files ``out``/``err`` while sampling its tree's RSS;
    returns the exit code (-9 after a timeout kill), the wall seconds and the peak bytes."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=err
    )
    sampler = PeakSampler(process.pid)
    sampler.start()
    try:
        code = process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)
        code = -9
    wall = time.perf_counter() - started
    return code, wall, sampler.stop()


def run_variant(
    case: str,
    variant: str,
    params: dict[str, Any],
    env: dict[str, str],
    *,
    timeout_s: float = 1800,
    cwd: Path | None = None,
) -> Sample:
    """Run ``python -m bench.child CASE VARIANT`` with ``params``; raises :class:`VariantFailed`."""
    with tempfile.TemporaryDirectory(prefix="bench-") as folder:
        params_file = Path(folder) / "params.json"
        result_file = Path(folder) / "result.json"
        log_file = Path(folder) / "output.log"
        params_file.write_text(json.dumps(params))
        command = [sys.executable, "-m", "bench.child", case, variant]
        command += [str(params_file), str(result_file)]
        with log_file.open("wb") as log:
            code, wall, peak = _run_sampled(command, env, cwd, timeout_s, log, log)
        if code != 0 or not result_file.exists():
            tail = log_file.read_text(errors="replace")[-3000:]
            raise VariantFailed(f"{case}/{variant} exited with code {code}:\n{tail}")
        result = json.loads(result_file.read_text())
    return Sample(wall_s=wall, peak_rss_mib=peak / MIB, result=result)


def run_command(
    command: list[str], env: dict[str, str], *, timeout_s: float = 3600, cwd: Path | None = None
) -> tuple[Sample, str]:
    """Run any command the same way (time, tree RSS); returns the sample and its stdout."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        code, wall, peak = _run_sampled(command, env, cwd, timeout_s, out, err)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    if code != 0:
        raise VariantFailed(f"{' '.join(command[:3])} exited with code {code}:\n{stderr[-3000:]}")
    return Sample(wall_s=wall, peak_rss_mib=peak / MIB), stdout
