"""A local Prefect server in a child process: for development, tests and benchmarks.

    server = start(home=paths.state_dir() / "prefect")    # waits until /api/health answers
    os.environ["PREFECT_API_URL"] = server.api_url
    ...
    server.stop()                                          # by PID, never by name

It listens on 127.0.0.1 only and keeps its SQLite database under ``home``; reusing the same
home skips the database migrations (the slow part of a first start).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from orchestration.prefect.environment import prepare

START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 15.0
RETRIES_503 = 5  # as Prefect's own client (PREFECT_CLIENT_MAX_RETRIES): after 2, 4 … 32 s
# Task-run states reach the server as events; its task-run recorder writes each one in its own
# transaction by default (batch size 1): two per dbt node, the largest part of the server's
# CPU on a 600-node flow run (BENCHMARKS.md). Batched, a state shows in the UI ≤ 1 s later.
# The caller's environment wins.
SERVER_SETTINGS = {
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "100",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL": "1",
}


class ServerStartError(RuntimeError):
    """The server did not answer in time; the message carries the end of its log."""


@dataclass
class LocalServer:
    """A running ``prefect server start`` child process."""

    process: subprocess.Popen
    port: int
    home: Path
    log_file: Path

    @property
    def api_url(self) -> str:
        """The value for ``PREFECT_API_URL``."""
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def pid(self) -> int:
        """The server's process id."""
        return self.process.pid

    def stop(self) -> None:
        """Stop the server (its process group, which it leads), waiting for it to exit."""
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=STOP_TIMEOUT_S)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def healthy(api_url: str) -> bool:
    """True when the Prefect API at ``api_url`` answers its health check."""
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=1) as response:  # noqa: S310
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _prefect_executable() -> str:
    beside = Path(sys.executable).with_name("prefect")
    return str(beside) if beside.exists() else "prefect"


def start(
    home: Path,
    *,
    port: int | None = None,
    ui: bool = False,
    timeout_s: float = START_TIMEOUT_S,
) -> LocalServer:
    """Start ``prefect server start`` on 127.0.0.1 with its state under ``home``; wait for it."""
    prepare()
    home.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    env = {
        **SERVER_SETTINGS,
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "true" if ui else "false",
    }
    env.pop("PREFECT_API_URL", None)  # the server must not try to talk to another one
    log_file = home / "server.log"
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            [_prefect_executable(), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so stop() reaches its children
        )
    server = LocalServer(process=process, port=port, home=home, log_file=log_file)
    deadline = time.monotonic() + timeout_s
    while not healthy(server.api_url):
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            tail = log_file.read_text(errors="replace")[-2000:]
            raise ServerStartError(f"the Prefect server did not start on port {port}:\n{tail}")
        time.sleep(0.2)
    return server


def api_error(exc: Exception) -> str:
    """One line for a failed Prefect API call: status, method and path, and the server's
    ``detail``; for a connection failure, the error itself."""
    import httpx

    if isinstance(exc, httpx.HTTPStatusError):
        request, response = exc.request, exc.response
        try:
            body = response.json()
        except ValueError:
            body = response.text[:200]
        detail = body.get("detail") if isinstance(body, dict) else body
        said = f": {detail}" if detail else ""
        return f"HTTP {response.status_code} on {request.method} {request.url.path}{said}"
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no detail'}"


def call_json(
    url: str,
    body: object = None,
    *,
    method: str | None = None,
    token: str | None = None,
    timeout: float = 60,
) -> object:
    """One JSON request to a local API (POST when ``body`` is given); a 503 — a busy Prefect
    server's "retry later" — is retried with the backoff Prefect's own client uses."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(  # noqa: S310 - local http servers
        url,
        data=None if body is None else json.dumps(body).encode(),
        headers=headers,
        method=method,
    )
    for attempt in range(RETRIES_503 + 1):
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                text = response.read()
            return json.loads(text) if text else None
        except urllib.error.HTTPError as exc:
            if exc.code != 503 or attempt == RETRIES_503:
                raise
            time.sleep(2 ** (attempt + 1))
    raise AssertionError("unreachable")
