"""Secrets never leak: a full `elt run` with sentinel secrets, then a failing one, and no
log line, exception text, run record or generated file contains any of them."""

from __future__ import annotations

import os
import secrets
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from elt import paths, roles, warehouse
from tests.helpers.warehouse import rows

pytestmark = pytest.mark.integration

PROJECT_RETRIES = "retries: {count: 2, delay: 1m}"  # jaffle_daily's, in pipelines.yml
SKIPPED_DIRS = {".venv", ".git", "node_modules", "__pycache__", ".ruff_cache", ".pytest_cache"}


class _AlertReceiver(ThreadingHTTPServer):
    daemon_threads = True
    bodies: list[bytes]


class _AlertHandler(BaseHTTPRequestHandler):
    server: _AlertReceiver

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.server.bodies.append(self.rfile.read(length))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args) -> None:
        """Quiet."""


@pytest.fixture
def alert_receiver() -> Iterator[_AlertReceiver]:
    """An Apprise json:// endpoint on 127.0.0.1 that keeps what it receives."""
    server = _AlertReceiver(("127.0.0.1", 0), _AlertHandler)
    server.bodies = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    netloc = f"{parts.username}:{password}@{parts.hostname}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def _elt_run(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "elt.cli", "run", "jaffle_daily"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=paths.project_root(),
    )


def _generated_files(since: float) -> Iterator[Path]:
    """Every file under the project written since ``since`` (the PostgreSQL data folder
    aside: it holds password verifiers, not passwords)."""
    pg_data = warehouse.data_dir()
    for folder, dirs, files in os.walk(paths.project_root()):
        here = Path(folder)
        dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS and here / d != pg_data]
        for name in files:
            path = here / name
            try:
                if path.is_file() and path.stat().st_mtime >= since:
                    yield path
            except FileNotFoundError:
                continue


def _private(path: Path) -> bool:
    """A 0600 file under .elt/: the one place secrets may be kept."""
    inside = paths.state_dir() in path.parents
    return inside and stat.S_IMODE(path.stat().st_mode) & 0o077 == 0


def _quick_retries_config(folder: Path) -> Path:
    """The project's ``pipelines.yml`` with jaffle_daily's retries kept (two) but 1 s apart:
    the failing run retries its ingest as in production, without two idle minutes."""
    text = paths.config_file().read_text()
    assert text.count(PROJECT_RETRIES) == 1, f"pipelines.yml no longer says {PROJECT_RETRIES}"
    config = folder / "pipelines.yml"
    config.write_text(text.replace(PROJECT_RETRIES, "retries: {count: 2, delay: 1s}"))
    return config


def test_sentinel_secrets_appear_in_no_log_record_or_file(
    pg, demo_sources, alert_receiver, tmp_path
):
    alert_sentinel = f"SENTINEL-alert-{secrets.token_hex(8)}"
    wrong_password = f"SENTINEL-pw-{secrets.token_hex(8)}"
    port = alert_receiver.server_address[1]
    env = {
        **os.environ,
        "ALERT_URL": f"json://127.0.0.1:{port}/{alert_sentinel}",
        "ELT_CONFIG": str(_quick_retries_config(tmp_path)),
    }
    # secrets that must appear nowhere at all
    never = [alert_sentinel, wrong_password]
    # secrets that may live only in 0600 files under .elt/
    kept = [
        os.environ["SOCIAL_API_TOKEN"],
        urlsplit(os.environ["SHOP_DB_URL"]).password,
        pg.password,
        *roles.stored_passwords(),
    ]
    assert all(len(value) >= 16 for value in kept)
    started = time.time() - 1

    good = _elt_run(env)
    assert good.returncode == 0, good.stdout + good.stderr
    bad = _elt_run({**env, "SHOP_DB_URL": _with_password(env["SHOP_DB_URL"], wrong_password)})
    assert bad.returncode != 0
    assert "ingest_shop" in bad.stdout + bad.stderr
    assert "ingest_shop failed (attempt 2), retrying" in bad.stdout + bad.stderr
    assert "password authentication failed" in bad.stdout + bad.stderr

    # the failure was alerted (so the alert URL was used), and the alert quotes no secret
    assert len(alert_receiver.bodies) == 1
    outputs = {"stdout/stderr of the runs": good.stdout + good.stderr + bad.stdout + bad.stderr}
    outputs["the alert"] = alert_receiver.bodies[0].decode()
    for table in ("runs", "steps", "loads", "dbt_results", "checks"):
        records = rows(pg.url(), f"select t::text from elt_meta.{table} t")
        outputs[f"elt_meta.{table}"] = "\n".join(record for (record,) in records)
    assert "password authentication failed" in outputs["elt_meta.runs"]
    for where, text in outputs.items():
        for secret in never + kept:
            assert secret not in text, f"a secret leaked into {where}"

    scanned = 0
    for path in _generated_files(started):
        content = path.read_bytes()
        scanned += 1
        for secret in never:
            assert secret.encode() not in content, f"a sentinel secret leaked into {path}"
        for secret in kept:
            if secret.encode() in content:
                assert _private(path), f"a secret is in {path}, which is not a 0600 file in .elt/"
    assert scanned > 50  # dbt's target/ and logs, GX results, dlt state, the lake's files
