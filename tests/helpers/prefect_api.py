"""A local Prefect server for a test module, and reading flow runs back from its REST API."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.orchestrators import OrchestrationEnv

EVENTS_TIMEOUT_S = 60.0
FINAL_STATES = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
PAGE = 200


def prefect_env_vars(home: Path) -> dict[str, str]:
    """Environment for Prefect clients of a test module: own home, dbt target, no telemetry."""
    return {
        "DBT_TARGET_PATH": str(home / "dbt" / "target"),
        "DBT_LOG_PATH": str(home / "dbt" / "logs"),
        "PREFECT_HOME": str(home / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }


@contextmanager
def prefect_client_of(api_url: str) -> Iterator[str]:
    """Point this process's Prefect client at ``api_url`` until the block ends; yields it.

    One server serves the whole test session (the ``prefect_server`` fixture): Prefect's
    in-process services (events, concurrency leases) keep the first API URL they saw, so a
    second server started by a later module would leave them talking to a stopped one."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    os.environ["PREFECT_API_URL"] = api_url
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        yield api_url


@dataclass
class PrefectEnv(OrchestrationEnv):
    """An isolated environment with a Prefect server."""

    api_url: str = ""

    def api(self, path: str, body: dict | None = None, method: str | None = None):
        """Call the Prefect REST API (POST when a body is given); a 503 is retried like
        Prefect's client does."""
        from orchestration.prefect.server import call_json

        return call_json(f"{self.api_url}{path}", body, method=method, timeout=30)


def task_runs_of(env: PrefectEnv, flow_run_id: str) -> list[dict]:
    """Every task run of a flow run (the API pages at 200)."""
    found: list[dict] = []
    for offset in range(0, 10_000, PAGE):
        body = {"flow_runs": {"id": {"any_": [flow_run_id]}}, "limit": PAGE, "offset": offset}
        page = env.api("/task_runs/filter", body)
        found += page
        if len(page) < PAGE:
            break
    return found


def settled_task_runs(env: PrefectEnv, flow_run_id: str, expected: int) -> list[dict]:
    """The flow run's task runs once ``expected`` of them exist, all in a final state.

    Task run states reach the server as events, processed after the flow run's own state:
    right after a flow run ends, its last task runs may still show their previous state.
    """
    deadline = time.monotonic() + EVENTS_TIMEOUT_S
    while True:
        task_runs = task_runs_of(env, flow_run_id)
        final = [run for run in task_runs if run["state_type"] in FINAL_STATES]
        if len(final) >= expected or time.monotonic() > deadline:
            return task_runs
        time.sleep(0.5)


def task_run_state_names(env: PrefectEnv, task_run_id: str) -> list[str]:
    """The names of the states a task run went through, oldest first."""
    states = env.api(f"/task_run_states/?task_run_id={task_run_id}", method="GET")
    return [state["name"] for state in sorted(states, key=lambda state: state["timestamp"])]


def flow_run_logs_once(
    env: PrefectEnv, flow_run_id: str, ready: Callable[[list[dict]], bool]
) -> list[dict]:
    """The flow run's log lines, once ``ready(lines)`` holds (or after ``EVENTS_TIMEOUT_S``):
    clients ship their log lines in batches, after the run's states."""
    deadline = time.monotonic() + EVENTS_TIMEOUT_S
    while True:
        found: list[dict] = []
        for offset in range(0, 100_000, PAGE):
            body = {"logs": {"flow_run_id": {"any_": [flow_run_id]}}, "limit": PAGE}
            page = env.api("/logs/filter", {**body, "offset": offset})
            found += page
            if len(page) < PAGE:
                break
        if ready(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.5)
