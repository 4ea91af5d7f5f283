"""A small client for a local Airflow 3 REST API (``/api/v2``) started by ``elt airflow up``:
a token from the simple auth manager (all admins locally), JSON in and out, bounded waits."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

FINISHED = {"success", "failed"}


class AirflowApi:
    """Calls against ``base_url`` (``http://127.0.0.1:PORT``)."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        token_url = f"{base_url}/auth/token"
        with urllib.request.urlopen(token_url, timeout=30) as response:  # noqa: S310 - local http
            self.token = json.load(response)["access_token"]

    def call(self, method: str, path: str, body: dict | None = None) -> Any:
        """One request; the decoded JSON answer (HTTP errors raise with their body)."""
        request = urllib.request.Request(  # noqa: S310 - the local api-server
            f"{self.base_url}/api/v2{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                text = response.read()
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{method} {path}: {exc.code} {exc.read()[:2000]!r}") from None
        return json.loads(text) if text else None

    def wait_for_dag(self, dag_id: str, timeout_s: float) -> None:
        """Until the dag-processor has parsed ``dag_id``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = self.call("GET", f"/dags?dag_id_pattern={dag_id}")["dags"]
            if any(d["dag_id"] == dag_id for d in found):
                return
            time.sleep(2)
        raise AssertionError(f"DAG {dag_id} was not parsed within {timeout_s} s")

    def wait_for_runs(self, dag_id: str, count: int, timeout_s: float) -> list[dict]:
        """Until ``count`` DAG runs of ``dag_id`` have finished; returns every run."""
        deadline = time.monotonic() + timeout_s
        runs: list[dict] = []
        while time.monotonic() < deadline:
            runs = self.call("GET", f"/dags/{dag_id}/dagRuns?limit=100")["dag_runs"]
            if sum(r["state"] in FINISHED for r in runs) >= count:
                return runs
            time.sleep(3)
        states = [(r["dag_run_id"], r["state"]) for r in runs]
        raise AssertionError(f"{dag_id}: {count} runs not finished in {timeout_s} s: {states}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        """Every task instance of one DAG run."""
        quoted = urllib.parse.quote(run_id, safe="")
        path = f"/dags/{dag_id}/dagRuns/{quoted}/taskInstances?limit=1000"
        return self.call("GET", path)["task_instances"]

    def wait_for_backfills(self, dag_id: str, count: int, timeout_s: float) -> list[dict]:
        """Until ``count`` backfills of ``dag_id`` exist and all have completed."""
        deadline = time.monotonic() + timeout_s
        found: list[dict] = []
        while time.monotonic() < deadline:
            found = self.call("GET", f"/backfills?dag_id={dag_id}")["backfills"]
            if len(found) >= count and all(b["completed_at"] for b in found):
                return found
            time.sleep(3)
        raise AssertionError(f"{dag_id}: backfills not completed in {timeout_s} s: {found}")
