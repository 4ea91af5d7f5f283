"""The Prefect flows end to end: a local Prefect server, the embedded PostgreSQL, the demo sources.

One module on purpose: the Prefect server (the slow part) starts once for all of it. The
module gets its own state folder, warehouse database, shop database and dbt target folder,
so it neither sees nor disturbs other tests' data.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg2
import pytest
import yaml
from typer.testing import CliRunner

from elt import paths

pytestmark = pytest.mark.integration

PIPELINE = "jaffle_daily"
WAREHOUSE_DB = "prefect_flow_wh"
SHOP_DB = "prefect_shop"
BAD_ORDER = "prefect-test-bad-order"
SERVE_TIMEOUT_S = 180.0
EVENTS_TIMEOUT_S = 60.0
FINAL_STATES = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


# -- helpers ------------------------------------------------------------------------------


def query(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


class Webhook:
    """A JSON webhook on 127.0.0.1 that keeps every body it receives."""

    def __init__(self) -> None:
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                received.append(json.loads(self.rfile.read(length) or b"{}"))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def apprise_url(self) -> str:
        return f"json://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def plan_steps(env: Env) -> list[str]:
    """The step ids of the pipeline's plan: the flow's tasks must carry exactly these names."""
    from elt.config import load
    from elt.spec import plan

    return [step.id for step in plan(load(env.config_file), PIPELINE).steps]


@dataclass
class Env:
    """What the module's fixtures set up."""

    api_url: str
    warehouse_url: str
    shop_url: str  # the admin's: the demo's own role may only read
    config_file: Path
    webhook: Webhook
    secrets: list[str]

    def api(self, path: str, body: dict | None = None):
        """Call the Prefect REST API (POST when a body is given)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - the test server's http URL
            f"{self.api_url}{path}", data=data, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return json.loads(response.read())


def _test_config(path: Path) -> Path:
    """The project's pipelines.yml, made to alert on success too and to retry quickly."""
    document = yaml.safe_load(paths.config_file().read_text())
    pipe = document["pipelines"][PIPELINE]
    pipe["notify"] = {"on": ["failure", "quality_warning", "success"], "urls": ["env:ALERT_URL"]}
    pipe["retries"] = {"count": 1, "delay": "1s"}
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            values[key] = value
    return values


# -- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def env(pg, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """Isolated state, warehouse, demo sources, webhook and a local Prefect server."""
    saved_environ = dict(os.environ)
    home = tmp_path_factory.mktemp("prefect-elt")
    warehouse_url = pg.create_database(WAREHOUSE_DB)
    os.environ.update(
        {
            "ELT_HOME": str(home),
            "ELT_WAREHOUSE_URL": warehouse_url,
            "ELT_CONFIG": str(_test_config(home / "pipelines.yml")),
            "DBT_TARGET_PATH": str(home / "dbt" / "target"),
            "DBT_LOG_PATH": str(home / "dbt" / "logs"),
            "PREFECT_HOME": str(home / "prefect"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
    )
    from elt import demo
    from orchestration.prefect import server as prefect_server

    server = prefect_server.start(home / "prefect-server")
    webhook = Webhook()
    try:
        demo.prepare(years=0.03, seed=7, admin_url=pg.url(), shop_database=SHOP_DB)
        sources = _read_env_file(home / "env")
        os.environ.update(sources)
        os.environ["ALERT_URL"] = webhook.apprise_url
        os.environ["PREFECT_API_URL"] = server.api_url
        demo.start_api()
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            yield Env(
                api_url=server.api_url,
                warehouse_url=warehouse_url,
                shop_url=pg.url(SHOP_DB),
                config_file=Path(os.environ["ELT_CONFIG"]),
                webhook=webhook,
                secrets=[pg.password, sources["SOCIAL_API_TOKEN"]],
            )
    finally:
        demo.stop_api()
        webhook.close()
        server.stop()
        os.environ.clear()
        os.environ.update(saved_environ)


def task_runs_of(env: Env, flow_run_id: str) -> list[dict]:
    """Every task run of a flow run (the API pages at 200)."""
    found: list[dict] = []
    for offset in range(0, 10_000, 200):
        body = {"flow_runs": {"id": {"any_": [flow_run_id]}}, "limit": 200, "offset": offset}
        page = env.api("/task_runs/filter", body)
        found += page
        if len(page) < 200:
            break
    return found


def settled_task_runs(env: Env, flow_run_id: str, expected: int) -> list[dict]:
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


def _run_flow(env: Env):
    from elt.config import load
    from orchestration.prefect.factory import build_flow

    env.webhook.received.clear()
    flow = build_flow(load(env.config_file), PIPELINE)
    state = flow(return_state=True)
    return state, list(env.webhook.received)


@pytest.fixture(scope="module")
def first_run(env: Env):
    """The first run of the pipeline on fresh sources: it should succeed."""
    return _run_flow(env)


# -- the flow -----------------------------------------------------------------------------


def test_installed_prefect_dbt_has_what_the_fast_node_task_runs_rely_on(env: Env):
    from orchestration.prefect.node_tasks import ContextSharingDbtRunner, runner_class, supported

    # a prefect-dbt upgrade that changes these private methods falls back to the stock
    # runner (slower, same results); this test says so before a benchmark has to
    assert supported()
    assert runner_class() is ContextSharingDbtRunner


def test_flow_run_publishes_marts_and_records_the_run(env: Env, first_run):
    state, alerts = first_run
    assert state.is_completed(), state.message
    outcome = state.result()
    run_id = outcome["run_id"]
    flow_run_id = str(state.state_details.flow_run_id)
    assert run_id.startswith(f"{PIPELINE}-") and run_id.endswith(flow_run_id.replace("-", "")[-12:])
    assert outcome["status"] == "succeeded"

    # published marts, with the shop's orders in them
    shop_orders = query(env.shop_url, "select count(*) from orders")[0][0]
    assert shop_orders > 0
    assert query(env.warehouse_url, "select count(*) from analytics.orders")[0][0] == shop_orders
    assert {"customers", "orders", "products"} <= set(outcome["published"])

    # elt_meta: the run, every plan step measured, the loads and the dbt node results
    (run,) = query(
        env.warehouse_url,
        "select pipeline, orchestrator, status, finished_at is not null from elt_meta.runs"
        " where run_id = %s",
        (run_id,),
    )
    assert run == (PIPELINE, "prefect", "succeeded", True)
    steps = query(
        env.warehouse_url,
        "select step_id, status, duration_s, peak_rss_mb, cpu_s, rows from elt_meta.steps"
        " where run_id = %s",
        (run_id,),
    )
    assert sorted(s[0] for s in steps) == sorted(plan_steps(env))
    assert all(s[1] == "succeeded" and s[2] >= 0 and s[3] > 0 and s[4] >= 0 for s in steps)
    ingested = {s[0]: s[5] for s in steps if s[0].startswith("ingest_")}
    assert all(rows > 0 for rows in ingested.values()), ingested
    loads = query(
        env.warehouse_url,
        "select source, sum(rows) from elt_meta.loads where run_id = %s group by source",
        (run_id,),
    )
    assert dict(loads).keys() == {"shop", "social", "landing"}
    statuses = dict(
        query(
            env.warehouse_url,
            "select status, count(*) from elt_meta.dbt_results where run_id = %s group by 1",
            (run_id,),
        )
    )
    assert statuses.get("success", 0) > 5 and statuses.get("pass", 0) > 20, statuses
    assert not {"error", "fail", "skipped", "runtime error"} & statuses.keys(), statuses

    # the success alert, through Apprise's JSON webhook
    assert len(alerts) == 1
    assert alerts[0]["title"].startswith(f"[elt] {PIPELINE}: succeeded")
    assert f"run {run_id}" in alerts[0]["message"]
    assert "rows loaded:" in alerts[0]["message"]


def test_flow_run_shows_steps_and_dbt_nodes_as_task_runs(env: Env, first_run):
    state, _ = first_run
    flow_run_id = str(state.state_details.flow_run_id)
    steps = plan_steps(env)
    run_id = state.result()["run_id"]
    results = query(
        env.warehouse_url, "select count(*) from elt_meta.dbt_results where run_id = %s", (run_id,)
    )[0][0]
    task_runs = settled_task_runs(env, flow_run_id, len(steps) + results)
    names = {run["name"]: run for run in task_runs}
    assert set(steps) <= names.keys()
    # pools are task tags, so the pools' concurrency limits apply to the steps
    assert names["ingest_shop"]["tags"] == ["database"]
    assert names["ingest_social"]["tags"] == ["api"]
    assert names["ingest_landing"]["tags"] == ["file_io"]
    assert names["dbt_build"]["tags"] == ["database"]
    nodes = [run for run in task_runs if run["name"] not in steps]
    # one task run per dbt node result, each its own (none merged, none missing)
    assert len(nodes) == results
    assert len({(run["task_key"], run["dynamic_key"]) for run in nodes}) == results
    assert all(run["task_inputs"].get("__parents__") for run in nodes)  # nested in dbt_build
    assert any(run["name"] == "model orders" for run in nodes)
    assert sum(run["name"].startswith("test ") for run in nodes) > 20
    # every node's task run reached a final state (none left "Running")
    assert {run["state_type"] for run in task_runs} == {"COMPLETED"}


def test_flow_run_creates_summary_and_quality_artifacts(env: Env, first_run):
    state, _ = first_run
    flow_run_id = str(state.state_details.flow_run_id)
    found = env.api("/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}})
    by_key = {artifact["key"]: artifact for artifact in found}
    summary = by_key["jaffle-daily-summary"]
    assert summary["type"] == "markdown"
    assert summary["data"].startswith(f"# {PIPELINE}: succeeded")
    assert state.result()["run_id"] in summary["data"]
    assert "## Steps" in summary["data"] and "| dbt_build | succeeded |" in summary["data"]
    quality = by_key["jaffle-daily-quality"]
    assert quality["type"] == "table"
    rows = json.loads(quality["data"]) if isinstance(quality["data"], str) else quality["data"]
    assert len(rows) > 20
    assert {row["status"] for row in rows} <= {"pass", "warn"}


def test_no_secret_in_flow_run_parameters_or_records(env: Env, first_run):
    state, _ = first_run
    flow_run = env.api(f"/flow_runs/{state.state_details.flow_run_id}")
    assert set(flow_run["parameters"]) <= {
        "full_refresh",
        "data_interval_start",
        "data_interval_end",
    }
    text = json.dumps(flow_run)
    for secret in env.secrets:
        assert secret not in text


def test_failing_dbt_test_fails_the_flow_blocks_publish_and_alerts(env: Env, first_run):
    published_before = query(env.warehouse_url, "select count(*) from analytics.orders")[0][0]
    # an order whose total is not subtotal + tax: dbt's tests on orders must catch it
    query(
        env.shop_url,
        "insert into orders (id, customer, ordered_at, store_id, subtotal, tax_paid, order_total)"
        " select %s, customer, ordered_at + interval '1 minute', store_id, 1000, 60, 9999"
        " from orders order by ordered_at desc limit 1",
        (BAD_ORDER,),
    )
    try:
        state, alerts = _run_flow(env)
    finally:
        query(env.shop_url, "delete from orders where id = %s", (BAD_ORDER,))

    assert state.is_failed()
    assert "quality gate closed" in state.message
    run_id = query(
        env.warehouse_url,
        "select run_id from elt_meta.runs where orchestrator = 'prefect' order by started_at desc"
        " limit 1",
    )[0][0]
    (run,) = query(
        env.warehouse_url, "select status, error from elt_meta.runs where run_id = %s", (run_id,)
    )
    assert run[0] == "failed" and run[1].startswith("quality_gate: quality gate closed")
    steps = dict(
        query(
            env.warehouse_url,
            "select step_id, status from elt_meta.steps where run_id = %s",
            (run_id,),
        )
    )
    assert steps["dbt_build"] == "succeeded"
    assert steps["quality_gate"] == "failed"
    assert "publish" not in steps  # never ran
    assert steps["notify"] == "succeeded"
    failed = query(
        env.warehouse_url,
        "select unique_id, status from elt_meta.dbt_results where run_id = %s"
        " and status <> all(array['success', 'pass', 'warn'])",
        (run_id,),
    )
    failed_tests = [uid for uid, status in failed if status == "fail"]
    assert failed_tests, failed
    # models downstream of the failed test were skipped, and recorded as skipped, not success
    assert any(status == "skipped" for _, status in failed)

    # nothing reached readers
    assert (
        query(env.warehouse_url, "select count(*) from analytics.orders")[0][0] == published_before
    )
    assert query(
        env.warehouse_url, "select count(*) from analytics.orders where order_id = %s", (BAD_ORDER,)
    ) == [(0,)]

    # the alert names the failing test
    assert len(alerts) == 1
    assert alerts[0]["title"].startswith(f"[elt] {PIPELINE}: failed")
    assert any(uid in alerts[0]["message"] for uid in failed_tests)

    # the failing test's own task run failed in Prefect too (a task run per step that ran
    # and per dbt node that ran; skipped nodes get none)
    nodes_ran = query(
        env.warehouse_url,
        "select count(*) from elt_meta.dbt_results where run_id = %s and status <> 'skipped'",
        (run_id,),
    )[0][0]
    flow_run_id = str(state.state_details.flow_run_id)
    task_runs = settled_task_runs(env, flow_run_id, len(steps) + nodes_ran)
    failed_names = {run["name"] for run in task_runs if run["state_type"] == "FAILED"}
    assert "quality_gate" in failed_names
    assert any(name.startswith("test ") for name in failed_names), failed_names


# -- deployments, limits, serve -----------------------------------------------------------


def _deployments(env: Env, name: str) -> dict[str, dict]:
    found = env.api("/deployments/filter", {"deployments": {"name": {"any_": [name]}}})
    return {deployment["entrypoint"]: deployment for deployment in found}


def test_deploy_writes_prefect_yaml_and_registers_deployments_limits_and_pools(
    env: Env, tmp_path: Path
):
    from orchestration.prefect.cli import app

    prefect_yaml = tmp_path / "prefect.yaml"
    runner = CliRunner()
    for target in ("local", "kubernetes"):
        result = runner.invoke(app, ["deploy", "--target", target, "--file", str(prefect_yaml)])
        assert result.exit_code == 0, result.output
        assert f"{PIPELINE}/{target}" in result.output
    document = yaml.safe_load(prefect_yaml.read_text())
    assert {entry["name"] for entry in document["deployments"]} == {"local", "kubernetes"}

    entrypoint = f"orchestration/prefect/flows.py:{PIPELINE}"
    local = _deployments(env, "local")[entrypoint]
    production = _deployments(env, "kubernetes")[entrypoint]
    for deployment in (local, production):
        assert deployment["parameters"] == {"full_refresh": False}
        assert [s["schedule"]["cron"] for s in deployment["schedules"]] == ["0 0 * * *"]
        assert deployment["global_concurrency_limit"]["limit"] == 1
        text = json.dumps(deployment)
        for secret in env.secrets:
            assert secret not in text
    assert local["work_pool_name"] == "elt-local"
    assert production["work_pool_name"] == "elt-kubernetes"
    assert production["job_variables"]["namespace"] == "elt"

    pool = env.api("/work_pools/elt-kubernetes")
    template = json.loads(
        (paths.project_root() / "k8s" / "prefect" / "base-job-template.json").read_text()
    )
    assert pool["type"] == "kubernetes"
    assert pool["base_job_template"] == template
    assert env.api("/work_pools/elt-local")["type"] == "process"

    limits = {gcl["name"]: gcl["limit"] for gcl in env.api("/v2/concurrency_limits/filter", {})}
    assert limits["tag:database"] == 8 and limits["tag:api"] == 10 and limits["tag:file_io"] == 6


def test_serve_registers_the_scheduled_deployment_with_an_importable_entrypoint(env: Env):
    command = [sys.executable, "-c", "from orchestration.prefect.cli import app; app()"]
    log = env.config_file.parent / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "serve", PIPELINE],
            cwd=paths.project_root(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + SERVE_TIMEOUT_S
        entrypoint = f"orchestration.prefect.flows.{PIPELINE}"
        while entrypoint not in _deployments(env, "serve"):
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
    finally:
        process.terminate()
        process.wait(timeout=30)
    served = _deployments(env, "serve")[entrypoint]
    assert [s["schedule"]["cron"] for s in served["schedules"]] == ["0 0 * * *"]
    assert served["parameters"] == {"full_refresh": False}
    assert served["global_concurrency_limit"]["limit"] == 1

    from prefect.flows import load_flow_from_entrypoint

    assert load_flow_from_entrypoint(entrypoint).name == PIPELINE
