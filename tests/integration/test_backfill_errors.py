"""`elt prefect backfill` and `elt airflow backfill` when the orchestrator fails: one line
saying what failed and what to do, exit 1, no traceback and no secret."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.helpers.process_env import elt_command, free_port

pytestmark = pytest.mark.integration

PASSWORD = "s3cret-backfill-pw"  # the test's own, valid nowhere
CONFIG = """
sources:
  shop:
    type: sql_database
    credentials: env:SHOP_DB_URL
    tables: {orders: {primary_key: id, cursor: ordered_at}}
pipelines:
  daily:
    description: One daily load.
    schedule: "@daily"
    owner: qa-team
    sources: [shop]
"""


class FailingPrefectApi:
    """A Prefect API on 127.0.0.1 whose health check passes and every other call answers
    ``status`` with a ``detail``, as a server whose database is locked does."""

    def __init__(self, status: int) -> None:
        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                healthy = self.path.endswith("/health")
                body = True if healthy else {"detail": "database is locked"}
                self.send_response(200 if healthy else status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps(body).encode())

            do_GET = do_POST = do_PATCH = _answer

            def log_message(self, *args) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def api_url(self) -> str:
        """The value for ``PREFECT_API_URL``."""
        return f"http://127.0.0.1:{self.server.server_address[1]}/api"

    def close(self) -> None:
        """Stop serving and free the port."""
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A one-pipeline project in its own state folder; no source secrets set."""
    config = tmp_path / "pipelines.yml"
    config.write_text(CONFIG)
    monkeypatch.setenv("ELT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ELT_CONFIG", str(config))
    monkeypatch.delenv("SHOP_DB_URL", raising=False)
    for key in ("AIRFLOW_HOME", "PREFECT_HOME", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        monkeypatch.delenv(key, raising=False)
    return tmp_path


@pytest.fixture
def failing_prefect(monkeypatch: pytest.MonkeyPatch) -> Iterator[FailingPrefectApi]:
    api = FailingPrefectApi(500)
    monkeypatch.setenv("PREFECT_API_URL", api.api_url)
    try:
        yield api
    finally:
        api.close()


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_prefect_backfill_names_the_failed_call_and_how_to_resume(project, failing_prefect):
    done = elt_command("prefect", "backfill", "daily", "--from", "2026-01-01", "--to", "2026-01-03")
    assert done.returncode == 1
    line = _one_error_line(done.stderr)
    assert f"the Prefect API at {failing_prefect.api_url} failed" in line
    assert "HTTP 500 on GET /api/deployments/name/daily/local: database is locked" in line
    assert "0 of 3 backfill run(s) of daily queued" in line
    assert "`elt prefect backfill daily --from 2026-01-01 --to 2026-01-03`" in line


def test_prefect_backfill_refuses_more_runs_than_a_year_of_days(project, failing_prefect):
    done = elt_command("prefect", "backfill", "daily", "--from", "2024-01-01", "--to", "2025-12-31")
    assert done.returncode == 1
    line = _one_error_line(done.stderr)
    assert "731 intervals of pipelines.daily's schedule start in 2024-01-01" in line
    assert "more than 400 runs at once; narrow --from/--to" in line


def test_airflow_backfill_says_which_database_failed_in_one_line(project, monkeypatch):
    url = f"postgresql://airflow:{PASSWORD}@127.0.0.1:{free_port()}/airflow"
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", url)
    done = elt_command("airflow", "backfill", "daily", "--from", "2026-01-01", "--to", "2026-01-03")
    assert done.returncode == 1
    line = _one_error_line(done.stderr)
    assert "airflow backfill create for daily failed:" in line
    assert "Connection refused" in line
    assert "is Airflow's metadata database reachable" in line
    log = project / "home" / "logs" / "airflow-backfill.log"
    assert f"Full output: {log}" in line
    assert "Traceback" in log.read_text()  # the detail is kept, for whoever needs it
    assert PASSWORD not in done.stderr + log.read_text()


def test_a_busy_prefect_server_is_asked_again_and_its_answer_used():
    """The test helpers' and the bench's calls retry a 503 (SQLite busy) as Prefect's client."""
    from orchestration.prefect.server import call_json

    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append(self.path)
            busy = len(seen) == 1
            self.send_response(503 if busy else 200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            body = {"exception_message": "Service Unavailable"} if busy else [{"id": "r1"}]
            self.wfile.write(json.dumps(body).encode())

        def log_message(self, *args) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/api/flow_runs/filter"
        assert call_json(url, {"limit": 1}) == [{"id": "r1"}]
    finally:
        server.shutdown()
        server.server_close()
    assert seen == ["/api/flow_runs/filter"] * 2
