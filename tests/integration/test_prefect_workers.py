"""Prefect deployments served by two process workers (``elt prefect worker --name …``), each
running its flow runs in an empty state folder of its own: a schedule fires and its run
completes, and two flow runs at once keep to the ``database`` pool's concurrency limit
(one slot here), as the task-run timeline shows.

A backfill of three daily intervals of `orders_check` (orders keyed on ordered_at for the
test, see tests/helpers/orchestrators.py) loads each day's orders in that day's run; running
one interval again changes nothing, and the raw orders equal a full refresh.

The manual runs go first: a full one loads everything, so the later runs (and the scheduled
one, whose one-minute data interval holds no new orders) find their raw tables there.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime

import pytest
from typer.testing import CliRunner

from elt import paths
from tests.helpers.orchestrators import (
    busy_days,
    day_loads,
    fingerprint,
    isolated_env,
    orders_on,
    project_document,
    query,
    with_backfill_orders,
)
from tests.helpers.prefect_api import (
    PrefectEnv,
    prefect_client_of,
    prefect_env_vars,
    settled_task_runs,
    task_runs_of,
)
from tests.helpers.process_env import elt_command

pytestmark = pytest.mark.integration

FULL = "jaffle_daily"
# two pipelines on different sources (one ingest of a source at a time is the rule)
ORDERS = "orders_check"
TWEETS = "tweets_check"
WORKERS = ("worker-1", "worker-2")
RUN_TIMEOUT_S = 420
SCHEDULE_TIMEOUT_S = 150
WORKER_START_TIMEOUT_S = 120
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def _test_config() -> dict:
    """jaffle_daily every minute; two one-source pipelines (orders_check daily, for the
    backfill); one `database` slot."""
    document = project_document()
    full = document["pipelines"][FULL]
    full.update(
        schedule="* * * * *",
        retries={"count": 0, "delay": "1s"},
        notify={"on": ["failure"], "urls": ["env:ALERT_URL"]},
    )
    document["pipelines"] = {
        FULL: full,
        ORDERS: {**_one_source("shop", "stg_shop__orders"), "schedule": "@daily"},
        TWEETS: _one_source("social", "stg_social__tweets"),
    }
    document["pools"] = {**document["pools"], "database": 1}
    return with_backfill_orders(document)


def _one_source(source: str, model: str) -> dict:
    return {
        "description": f"{model} from {source} only",
        "owner": "qa-team",
        "retries": {"count": 0, "delay": "1s"},
        "sources": [source],
        "dbt": {"select": [model]},
    }


@pytest.fixture(scope="module")
def env(pg, prefect_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectEnv]:
    home = tmp_path_factory.mktemp("prefect-workers")
    with (
        isolated_env(
            pg,
            home,
            warehouse_db="prefect_workers_wh",
            shop_db="prefect_workers_shop",
            config=_test_config(),
            extra_env={**prefect_env_vars(home), "PREFECT_WORKER_QUERY_SECONDS": "2"},
        ) as base,
        prefect_client_of(prefect_server) as api_url,
    ):
        yield PrefectEnv(**vars(base), api_url=api_url)


@pytest.fixture(scope="module")
def workers(env: PrefectEnv) -> Iterator[dict[str, subprocess.Popen]]:
    """`elt prefect deploy`, then two `elt prefect worker --name …`; stopped by PID after."""
    from orchestration.prefect.cli import app

    prefect_yaml = env.home / "prefect.yaml"
    deployed = CliRunner().invoke(app, ["deploy", "--file", str(prefect_yaml)])
    assert deployed.exit_code == 0, deployed.output
    _set_paused(env, FULL, True)  # its schedule fires in the scheduled-run test only
    command = [sys.executable, "-c", "from elt.cli import app; app()", "prefect", "worker"]
    started: dict[str, subprocess.Popen] = {}
    try:
        for name in WORKERS:
            with (env.home / f"{name}.log").open("wb") as out:
                started[name] = subprocess.Popen(
                    [*command, "--name", name],
                    cwd=paths.project_root(),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # prefect's CLI runs the worker as a child
                )
        _wait_for_workers(env, started)
        yield started
    finally:
        _set_paused(env, FULL, True)
        for process in started.values():
            os.killpg(process.pid, signal.SIGTERM)
        for process in started.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def _wait_for_workers(env: PrefectEnv, started: dict[str, subprocess.Popen]) -> None:
    deadline = time.monotonic() + WORKER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        online = env.api("/work_pools/elt-local/workers/filter", {})
        if {w["name"] for w in online if w["status"] == "ONLINE"} >= set(WORKERS):
            return
        for name, process in started.items():
            log = (env.home / f"{name}.log").read_text()[-3000:]
            assert process.poll() is None, f"{name} exited:\n{log}"
        time.sleep(1)
    raise AssertionError(f"workers not online within {WORKER_START_TIMEOUT_S} s")


def _deployment(env: PrefectEnv, flow: str) -> dict:
    found = env.api("/deployments/filter", {"deployments": {"name": {"any_": ["local"]}}})
    flows = {f["id"]: f["name"] for f in env.api("/flows/filter", {})}
    (match,) = [d for d in found if flows[d["flow_id"]] == flow]
    return match


def _set_paused(env: PrefectEnv, flow: str, paused: bool) -> None:
    deployment = _deployment(env, flow)
    env.api(f"/deployments/{deployment['id']}", {"paused": paused}, method="PATCH")


def _started_runs(env: PrefectEnv, deployment_id: str) -> list[dict]:
    """Flow runs of the deployment that have started (not the ones scheduled ahead)."""
    started = ["RUNNING", "COMPLETED", "FAILED", "CRASHED", "CANCELLED"]
    body = {
        "deployments": {"id": {"any_": [deployment_id]}},
        "flow_runs": {"state": {"type": {"any_": started}}},
        "limit": 50,
    }
    return env.api("/flow_runs/filter", body)


def _wait_final(env: PrefectEnv, run_ids: list[str]) -> list[dict]:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        runs = [env.api(f"/flow_runs/{run_id}") for run_id in run_ids]
        if all(r["state_type"] in FINAL for r in runs):
            return runs
        time.sleep(3)
    raise AssertionError(f"flow runs not finished in {RUN_TIMEOUT_S} s: {run_ids}")


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _start(env: PrefectEnv, flow: str) -> str:
    deployment = _deployment(env, flow)
    return env.api(f"/deployments/{deployment['id']}/create_flow_run", {})["id"]


def test_two_flow_runs_at_once_keep_to_the_database_limit(env: PrefectEnv, workers):
    (first,) = _wait_final(env, [_start(env, FULL)])  # everything loaded once, by hand
    assert first["state_type"] == "COMPLETED", first["state"]
    runs = _wait_final(env, [_start(env, ORDERS), _start(env, TWEETS)])
    assert [r["state_type"] for r in runs] == ["COMPLETED", "COMPLETED"], runs
    # both flow runs were under way at the same time …
    spans = sorted((_time(r["start_time"]), _time(r["end_time"])) for r in runs)
    assert spans[1][0] < spans[0][1]
    # … yet no two `database` task runs overlapped
    database = []
    for run in runs:
        settled_task_runs(env, run["id"], expected=1)
        database += [
            (_time(t["start_time"]), _time(t["end_time"]), t["name"])
            for t in task_runs_of(env, run["id"])
            if "database" in t["tags"] and t["start_time"] and t["end_time"]
        ]
    database.sort()
    assert len(database) >= 7  # dbt build, gate, publish of each run, and the shop ingest
    for earlier, later in itertools.pairwise(database):
        assert later[0] >= earlier[1], f"{earlier[2]} and {later[2]} overlapped"


def test_a_scheduled_run_fires_and_completes_on_a_worker(env: PrefectEnv, workers):
    deployment = _deployment(env, FULL)
    _set_paused(env, FULL, False)  # every minute from now on
    deadline = time.monotonic() + SCHEDULE_TIMEOUT_S
    fired: list[dict] = []
    while not fired and time.monotonic() < deadline:
        fired = [r for r in _started_runs(env, deployment["id"]) if r["auto_scheduled"]]
        time.sleep(2)
    _set_paused(env, FULL, True)  # no further minute runs
    assert fired, f"no scheduled run started within {SCHEDULE_TIMEOUT_S} s"
    (run,) = _wait_final(env, [fired[0]["id"]])
    assert run["state_type"] == "COMPLETED", run["state"]
    published = query(env.warehouse_url, "select count(*) from analytics.orders")[0][0]
    assert published == query(env.shop_url, "select count(*) from orders")[0][0] > 0
    # it ran in a worker's own folder, never in the test's state folder
    assert not (env.home / "dlt").exists()
    assert any((paths.state_dir() / "prefect" / "workers" / w / "home").is_dir() for w in WORKERS)


def test_backfill_runs_one_flow_run_per_interval_reading_only_its_window(env: PrefectEnv, workers):
    days = busy_days(env.shop_url)
    # a minute schedule would make thousands of intervals: refused
    too_many = elt_command(
        "prefect", "backfill", FULL, "--from", "2018-01-01", "--to", "2018-01-09"
    )
    assert too_many.returncode == 1
    assert "intervals of pipelines.jaffle_daily's schedule" in too_many.stderr
    done = elt_command(
        "prefect", "backfill", ORDERS, "--from", days[0].isoformat(), "--to", days[2].isoformat()
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 flow run(s) queued on deployment orders_check/local" in done.stdout
    runs = _wait_final(env, _backfill_runs(env, expected=3))
    assert {r["state_type"] for r in runs} == {"COMPLETED"}, runs
    assert sorted(r["parameters"]["data_interval_start"][:10] for r in runs) == [
        d.isoformat() for d in days
    ]
    loads = day_loads(env.warehouse_url, days)  # one load per day, holding only that day
    assert len(set(loads.values())) == 3
    counts = {day: orders_on(env.shop_url, "orders", day) for day in days}
    assert {day: orders_on(env.warehouse_url, "raw_shop.orders", day) for day in days} == counts
    before = fingerprint(env.warehouse_url, "raw_shop.orders")

    # the middle interval again: loaded anew, nothing changes
    again = elt_command(
        "prefect", "backfill", ORDERS, "--from", days[1].isoformat(), "--to", days[1].isoformat()
    )
    assert again.returncode == 0, again.stdout + again.stderr
    (rerun,) = _wait_final(env, _backfill_runs(env, expected=4)[3:])
    assert rerun["state_type"] == "COMPLETED", rerun["state"]
    reloaded = day_loads(env.warehouse_url, days)
    assert reloaded[days[0]] == loads[days[0]] and reloaded[days[2]] == loads[days[2]]
    assert reloaded[days[1]] != loads[days[1]]
    assert {day: orders_on(env.warehouse_url, "raw_shop.orders", day) for day in days} == counts
    assert fingerprint(env.warehouse_url, "raw_shop.orders") == before

    # and the raw orders equal those of one full refresh of the source (a full `elt run` of
    # this one-model pipeline would rebuild its audit schema without the models its tests need)
    refreshed = elt_command("ingest", "shop", "--full-refresh", timeout=600)
    assert refreshed.returncode == 0, refreshed.stdout + refreshed.stderr
    assert fingerprint(env.warehouse_url, "raw_shop.orders") == before


def _backfill_runs(env: PrefectEnv, expected: int) -> list[str]:
    """Ids of the flow runs tagged ``backfill``, oldest first (``expected`` of them)."""
    body = {"flow_runs": {"tags": {"all_": ["backfill"]}}, "sort": "EXPECTED_START_TIME_ASC"}
    found = env.api("/flow_runs/filter", {**body, "limit": 20})
    assert len(found) == expected, [r["name"] for r in found]
    return [r["id"] for r in sorted(found, key=lambda r: r["created"])]
