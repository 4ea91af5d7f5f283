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


def error_line(output: str) -> str:
    """The one line of a failed program's output that says what went wrong: the exception
    line ending a Python traceback (joined with its continuation lines), else the last
    non-empty line."""
    lines = [line for line in output.splitlines() if line.strip()]
    if not lines:
        return "no output"
    last_frame = max((i for i, line in enumerate(lines) if line.startswith("  File ")), default=-1)
    if last_frame < 0:
        return lines[-1].strip()
    after = lines[last_frame + 1 :]
    start = next((i for i, line in enumerate(after) if not line[0].isspace()), None)
    if start is None:
        return lines[-1].strip()
    message = [after[start]]
    for line in after[start + 1 :]:
        if not line[0].isspace():
            break
        message.append(line.strip())
    return " ".join(message)
