"""The warehouse lost in the middle of `elt run`: the run fails with one clear line, the
failure alert is sent from memory, and the run's row — which could not be written then — is
closed with that outcome by the next command, without a second alert."""

from __future__ import annotations

import subprocess
import sys
import time

import psycopg2
import pytest

from elt import paths
from tests.helpers.pg_instance import PgInstance, server_home
from tests.helpers.warehouse import rows
from tests.helpers.webhook import Webhook

pytestmark = pytest.mark.integration

CONFIG = """\
version: 1
sources:
  files:
    type: filesystem
    bucket_url: {landing}
    files: {{items: {{glob: "*.csv", format: csv, primary_key: id}}}}
pipelines:
  lost:
    sources: [files]
    publish: none
    notify: {{on: [failure], urls: ["env:ALERT_URL"]}}
"""


def _holds_lease(url: str) -> bool:
    try:
        return bool(rows(url, "select count(*) from elt_meta.leases where run_id <> ''")[0][0])
    except psycopg2.Error:  # elt_meta not created yet
        return False


def test_a_run_that_loses_the_warehouse_alerts_once_and_is_closed_on_the_next_start(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "items.csv").write_text("id,name\n1,a\n2,b\n")
    (tmp_path / "pipelines.yml").write_text(CONFIG.format(landing=landing))
    server = PgInstance(server_home("lost-warehouse"))
    webhook = Webhook()
    try:
        url = server.start()
        env = {
            **server.env(),
            "ELT_WAREHOUSE_URL": url,
            "ELT_CONFIG": str(tmp_path / "pipelines.yml"),
            "ALERT_URL": webhook.apprise_url,
            # the ingest waits 8 s before it starts: the warehouse is stopped meanwhile
            "ELT_FAILPOINTS": '{"ingest_files": {"sleep_s": 8}}',
        }
        command = [sys.executable, "-m", "elt.cli", "run", "lost"]
        process = subprocess.Popen(
            command,
            env=env,
            cwd=paths.project_root(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 120
        while not _holds_lease(url):  # bounded: the run takes its lease, then sleeps 8 s
            assert process.poll() is None and time.monotonic() < deadline, process.stdout.read()
            time.sleep(0.2)
        server.stop()
        output = process.communicate(timeout=300)[0]
        assert process.returncode == 1, output
        error_lines = [line for line in output.splitlines() if line.startswith("error:")]
        assert len(error_lines) == 1 and "ingest_files" in error_lines[0], output
        alerts = webhook.take()
        assert len(alerts) == 1 and alerts[0]["title"].startswith("[elt] lost: failed"), alerts
        unsettled = list((server.home / "unsettled").glob("*.json"))
        assert len(unsettled) == 1, "the outcome was not kept for the next start"

        url = server.start()
        status = subprocess.run(
            [sys.executable, "-m", "elt.cli", "status"],
            env=env,
            cwd=paths.project_root(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert status.returncode == 0, status.stdout + status.stderr
        ((state, error),) = rows(url, "select status, error from elt_meta.runs")
        assert state == "failed" and error.startswith("ingest_files: "), error
        assert "process died" not in error
        assert not list((server.home / "unsettled").glob("*.json"))
        assert webhook.take() == []  # one failure, one alert
    finally:
        webhook.close()
        server.destroy()
