"""Run a helper program (airflow, prefect, pg_ctl …) and fail with what it said."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from elt.redact import redact


def run_checked(
    command: Sequence[str],
    what: str,
    *,
    timeout: float,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    error: type[Exception] = RuntimeError,
    tail: int = 3000,
) -> subprocess.CompletedProcess[str]:
    """Run ``command``; raise ``error`` naming ``what`` with the end of its output when it
    exits non-zero (secrets scrubbed)."""
    completed = subprocess.run(
        list(command),
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if completed.returncode != 0:
        output = (completed.stderr or completed.stdout).strip()
        raise error(redact(f"{what} failed (exit {completed.returncode}):\n{output[-tail:]}"))
    return completed
