"""Run the demo API as a detached background process, tracked by a pid file.

Start and stop are idempotent. A pid file whose process is gone, or is not the demo API
(the pid may have been reused), is stale: it is replaced and that process is left alone.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

API_MODULE = "elt.demo.api"
SERVICE_NAME = "elt-demo-tweets"  # what /health answers, so another server on the port won't do
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0

# Popen objects of the servers this process started, kept so they can be reaped.
_children: dict[int, subprocess.Popen[bytes]] = {}


class ApiStartError(RuntimeError):
    """The demo API did not come up."""


def is_running(pid_file: Path, port: int) -> bool:
    """True when the pid file names a live demo API process and /health answers on ``port``."""
    pid = _read_pid(pid_file)
    return pid is not None and _is_api_process(pid) and is_healthy(port)


def is_healthy(port: int, timeout: float = 1.0) -> bool:
    """True when the demo API answers /health on 127.0.0.1:``port``."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=timeout) as response:
            return bool(json.load(response).get("service") == SERVICE_NAME)
    except (OSError, ValueError):
        return False


def start_background(
    tweets_csv: Path, token_file: Path, port: int, log_file: Path, pid_file: Path
) -> int:
    """Start the API detached (own session), wait ≤10 s for /health, return its pid.

    Returns the running server's pid when it is already up and healthy.
    """
    if is_running(pid_file, port):
        return _read_pid(pid_file) or 0
    stop_background(pid_file)  # ours but unhealthy or on another port; or a stale file
    log_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", API_MODULE, "--csv", str(tweets_csv)]
    command += ["--port", str(port), "--token-file", str(token_file)]
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=_child_env(),
        )
    _children[process.pid] = process
    _write_pid(pid_file, process.pid)
    try:
        _wait_healthy(process, port, log_file)
    except ApiStartError:
        _terminate(process.pid)
        pid_file.unlink(missing_ok=True)
        raise
    return process.pid


def stop_background(pid_file: Path) -> bool:
    """Stop the API named in ``pid_file`` (SIGTERM, then SIGKILL); False if none was running."""
    pid = _read_pid(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    stopped = _is_api_process(pid)
    if stopped:
        _terminate(pid)
    _children.pop(pid, None)
    pid_file.unlink(missing_ok=True)
    return stopped


def _wait_healthy(process: subprocess.Popen[bytes], port: int, log_file: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        code = process.poll()
        if code is not None:
            raise ApiStartError(
                f"the demo API exited with code {code} while starting; "
                f"last lines of {log_file}:\n{_tail(log_file)}"
            )
        if is_healthy(port, timeout=0.5):
            return
        time.sleep(0.1)
    raise ApiStartError(
        f"the demo API did not answer on port {port} within {START_TIMEOUT:.0f} s; see {log_file}"
    )


def _terminate(pid: int) -> None:
    """SIGTERM, a bounded wait, then SIGKILL; reaps the process when it is our child."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            break
        if _wait_gone(pid, STOP_TIMEOUT):
            break
    _children.pop(pid, None)


def _wait_gone(pid: int, timeout: float) -> bool:
    child = _children.get(pid)
    try:
        if child is not None:
            child.wait(timeout)
        else:
            psutil.Process(pid).wait(timeout)
    except (subprocess.TimeoutExpired, psutil.TimeoutExpired):
        return False
    except psutil.NoSuchProcess:
        pass
    return True


def _is_api_process(pid: int) -> bool:
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        return False
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        command = process.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    # `python -m elt.demo.api ...`: the module right after -m, not merely mentioned
    return any(
        flag == "-m" and module == API_MODULE for flag, module in itertools.pairwise(command)
    )


def _read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def _write_pid(pid_file: Path, pid: int) -> None:
    partial = pid_file.with_name(f".{pid_file.name}.partial")
    partial.write_text(f"{pid}\n")
    os.replace(partial, pid_file)


def _child_env() -> dict[str, str]:
    """This environment, with the folder holding the ``elt`` package importable."""
    import elt

    package_parent = str(Path(elt.__file__).resolve().parent.parent)
    paths = [package_parent, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}


def _tail(path: Path, lines: int = 10) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
