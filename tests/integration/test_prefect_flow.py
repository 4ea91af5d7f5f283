"""The Prefect flows end to end: a local Prefect server, the embedded PostgreSQL, the demo sources.

One module on purpose: the Prefect server (the slow part) starts once for all of it. The
module gets its own state folder, warehouse database, shop database and dbt target folder,
so it neither sees nor disturbs other tests' data.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from elt import paths
from tests.helpers.lifecycle import start_serve
from tests.helpers.orchestrators import (
    ALERT_EVERYTHING,
    isolated_env,
    latest_run_id,
    project_document,
    query,
    step_statuses,
)
from tests.helpers.prefect_api import (
    PrefectEnv,
    flow_run_logs_once,
    prefect_client_of,
    prefect_env_vars,
    settled_task_runs,
    task_run_state_names,
    task_runs_of,
)

pytestmark = pytest.mark.integration

PIPELINE = "jaffle_daily"
WAREHOUSE_DB = "prefect_flow_wh"
SHOP_DB = "prefect_shop"
BAD_ORDER = "prefect-test-bad-order"
SERVE_TIMEOUT_S = 180.0
MAX_DURATION_S = 1

Env = PrefectEnv


def plan_steps(env: Env) -> list[str]:
    """The step ids of the pipeline's plan: the flow's tasks must carry exactly these names."""
    from elt.config import load
    from elt.spec import plan

    return [step.id for step in plan(load(env.config_file), PIPELINE).steps]


def _test_config() -> dict:
    """The project's pipelines.yml, made to alert on every event and to retry quickly, with a
    run duration limit every run breaches (``limit_exceeded`` is tested on the same runs)."""
    document = project_document()
    pipe = document["pipelines"][PIPELINE]
    pipe["notify"] = {"on": ALERT_EVERYTHING, "urls": ["env:ALERT_URL"]}
    pipe["retries"] = {"count": 1, "delay": "1s"}
    pipe["limits"] = {"max_duration": f"{MAX_DURATION_S}s", "max_task_duration": "30m"}
    return document


# -- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def env(pg, prefect_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """Isolated state, warehouse, demo sources, webhook and a local Prefect server."""
    home = tmp_path_factory.mktemp("prefect-elt")
    with (
        isolated_env(
            pg,
            home,
            warehouse_db=WAREHOUSE_DB,
            shop_db=SHOP_DB,
            config=_test_config(),
            extra_env=prefect_env_vars(home),
        ) as base,
        prefect_client_of(prefect_server) as api_url,
    ):
        yield PrefectEnv(**vars(base), api_url=api_url)


def _run_flow(env: Env):
    """Run the flow once; returns its final state and every alert it sent."""
    from elt.config import load
    from orchestration.prefect.factory import build_flow

    env.webhook.take()
    flow = build_flow(load(env.config_file), PIPELINE)
    state = flow(return_state=True)
    return state, env.webhook.take()


def outcome_alerts(alerts: list[dict]) -> list[dict]:
    """The run's outcome alerts (failure, warning, success), without ``limit_exceeded``."""
    return [alert for alert in alerts if "limit(s) exceeded" not in alert["title"]]


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
    (success,) = outcome_alerts(alerts)
    assert success["title"].startswith(f"[elt] {PIPELINE}: succeeded")
    assert f"run {run_id}" in success["message"]
    assert "rows loaded:" in success["message"]


def test_a_breached_duration_limit_sends_one_limit_exceeded_alert(env: Env, first_run):
    state, alerts = first_run
    run_id = state.result()["run_id"]
    (run_duration,) = query(
        env.warehouse_url, "select duration_s from elt_meta.runs where run_id = %s", (run_id,)
    )[0]
    limit_alerts = [alert for alert in alerts if alert not in outcome_alerts(alerts)]
    assert len(limit_alerts) == 1, alerts
    alert = limit_alerts[0]
    assert alert["title"] == f"[elt] {PIPELINE}: 1 duration limit(s) exceeded"
    # observed against the limit (the test config's max_duration: 1s), then where the time went
    match = re.search(r"run took (\d+) s, over max_duration (\d+) s", alert["message"])
    assert match, alert["message"]
    assert int(match[2]) == MAX_DURATION_S
    assert MAX_DURATION_S < int(match[1]) <= run_duration + 1
    durations = dict(re.findall(r"^  (\w+): ([\d.]+) s$", alert["message"], re.MULTILINE))
    steps = dict(
        query(
            env.warehouse_url,
            "select step_id, duration_s from elt_meta.steps where run_id = %s"
            " and step_id <> 'notify'",
            (run_id,),
        )
    )
    assert durations.keys() == steps.keys()
    assert all(abs(float(durations[s]) - steps[s]) < 0.06 for s in steps), (durations, steps)
    # and the breach is on record with the notify step, as under Airflow
    (detail,) = query(
        env.warehouse_url,
        "select detail->'limits_exceeded' from elt_meta.steps where run_id = %s"
        " and step_id = 'notify'",
        (run_id,),
    )[0]
    assert detail == [match[0]]


def test_the_local_server_records_task_run_states_in_batches(env: Env):
    # orchestration.prefect.server: two state events per dbt node, one transaction per event
    # with Prefect's default batch size of 1
    recorder = env.api("/admin/settings", method="GET")["server"]["services"]["task_run_recorder"]
    assert (recorder["batch_size"], recorder["flush_interval"]) == (100, 1)


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
    # a node's task run is made before Prefect's engine runs it: it went Running →
    # Completed (no Pending state sent), and still lists its upstream nodes' task runs
    orders = names["model orders"]
    assert task_run_state_names(env, orders["id"]) == ["Running", "Completed"]
    by_id = {run["id"]: run["name"] for run in nodes}
    upstream = {by_id[up["id"]] for up in orders["task_inputs"]["wait_for"]}
    assert upstream and all(name.startswith("model ") for name in upstream), upstream


def test_the_flows_dbt_build_reuses_the_quality_gates_partial_parse(env: Env, first_run):
    # dbt_build (prefect-dbt) and the quality gate's `dbt ls` (elt.dbt, the run's last dbt
    # call) share one target folder; with different --profile/--target each found the
    # other's parse stale and parsed the whole project again, twice per flow run
    from orchestration.prefect.transform import DbtOptions, invoke_build

    log = paths.state_dir() / "logs" / "dbt.log"
    before = log.stat().st_size if log.exists() else 0
    outcome = invoke_build(["--select", "stg_shop__orders"], DbtOptions(log_level="info"))
    built = {record.unique_id.rsplit(".", 1)[-1]: record.status for record in outcome.results}
    assert outcome.success and built["stg_shop__orders"] == "success", built
    with log.open() as text:
        text.seek(before)
        lines = text.read()
    assert "Running with dbt" in lines
    assert "Unable to do partial parsing" not in lines


def _finished_lines(logs: list[dict], task_run_ids: set[str]) -> list[dict]:
    """The task engine's "Finished in state …" lines of the given task runs."""
    return [
        line
        for line in logs
        if line["task_run_id"] in task_run_ids and line["message"].startswith("Finished in state")
    ]


def test_node_task_runs_ship_no_finished_line_the_steps_do(env: Env, first_run):
    state, _ = first_run
    flow_run_id = str(state.state_details.flow_run_id)
    steps = plan_steps(env)
    task_runs = task_runs_of(env, flow_run_id)
    step_ids = {run["id"] for run in task_runs if run["name"] in steps}
    node_ids = {run["id"] for run in task_runs if run["name"] not in steps}
    # the steps' lines are shipped after dbt_build's nodes': once every step's line is there,
    # a node's would be too
    logs = flow_run_logs_once(
        env, flow_run_id, lambda lines: len(_finished_lines(lines, step_ids)) >= len(steps)
    )
    assert len(_finished_lines(logs, step_ids)) == len(steps)
    assert len(node_ids) > 100
    assert _finished_lines(logs, node_ids) == []


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


@pytest.fixture(scope="module")
def failed_run(env: Env, first_run):
    """A run on a shop with one bad order; the order is gone from the shop afterwards."""
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
    return state, alerts, published_before


def test_failing_dbt_test_fails_the_flow_blocks_publish_and_alerts(env: Env, failed_run):
    state, alerts, published_before = failed_run
    assert state.is_failed()
    assert "quality gate closed" in state.message
    run_id = latest_run_id(env.warehouse_url, PIPELINE, "prefect")
    (run,) = query(
        env.warehouse_url, "select status, error from elt_meta.runs where run_id = %s", (run_id,)
    )
    assert run[0] == "failed" and run[1].startswith("quality_gate: quality gate closed")
    steps = step_statuses(env.warehouse_url, run_id)
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
    (alert,) = outcome_alerts(alerts)
    assert alert["title"].startswith(f"[elt] {PIPELINE}: failed")
    assert any(uid in alert["message"] for uid in failed_tests)

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
    # a failed node's task run still ships its lines (only passing nodes' are dropped)
    failed_nodes = {
        run["id"] for run in task_runs if run["state_type"] == "FAILED" and " " in run["name"]
    }
    logs = flow_run_logs_once(
        env, flow_run_id, lambda lines: len(_finished_lines(lines, failed_nodes)) >= 1
    )
    errors = _finished_lines(logs, failed_nodes)
    assert errors and all(line["level"] >= 40 for line in errors), errors
    assert all("Failed" in line["message"] for line in errors)
    # a failed data test is not retried (the test config retries steps once): dbt_build
    # succeeded with a failed test in it, and the gate never retries
    by_name = {run["name"]: run for run in task_runs}
    assert by_name["dbt_build"]["run_count"] == 1
    assert by_name["quality_gate"]["run_count"] == 1


def _retry_flow_run(env: Env, flow_run_id: str):
    """Retry a finished flow run in this process, as the UI's "Retry" and a worker do."""
    from prefect.client.orchestration import get_client
    from prefect.flow_engine import run_flow
    from prefect.states import AwaitingRetry

    from elt.config import load
    from orchestration.prefect.factory import build_flow

    with get_client(sync_client=True) as client:
        client.set_flow_run_state(flow_run_id, AwaitingRetry(message="Retry from the test"))
        flow_run = client.read_flow_run(flow_run_id)
    env.webhook.take()
    flow = build_flow(load(env.config_file), PIPELINE)
    state = run_flow(flow, flow_run=flow_run, parameters=flow_run.parameters, return_type="state")
    return state, env.webhook.take()


def test_retrying_the_failed_flow_run_reruns_the_failed_tests(env: Env, failed_run):
    state, _, _ = failed_run
    flow_run_id = str(state.state_details.flow_run_id)
    run_id = latest_run_id(env.warehouse_url, PIPELINE, "prefect")
    failing = query(
        env.warehouse_url,
        "select unique_id from elt_meta.dbt_results where run_id = %s and status = 'fail'",
        (run_id,),
    )
    assert failing
    # the data is fixed (gone from the shop, and from the raw table it was loaded into)
    query(env.warehouse_url, "delete from raw_shop.orders where id = %s", (BAD_ORDER,))

    retried, alerts = _retry_flow_run(env, flow_run_id)

    assert retried.is_completed(), retried.message
    assert retried.result()["run_id"] == run_id  # the same elt run, continued
    # dbt ran the model again and its tests with it: the failed tests now pass, in place
    statuses = dict(
        query(
            env.warehouse_url,
            "select unique_id, status from elt_meta.dbt_results where run_id = %s",
            (run_id,),
        )
    )
    assert {statuses[uid] for (uid,) in failing} == {"pass"}
    assert not {"fail", "error", "skipped"} & set(statuses.values())
    steps = step_statuses(env.warehouse_url, run_id)
    assert steps["quality_gate"] == "succeeded" and steps["publish"] == "succeeded"
    assert query(
        env.warehouse_url, "select status from elt_meta.runs where run_id = %s", (run_id,)
    ) == [("succeeded",)]
    shop_orders = query(env.shop_url, "select count(*) from orders")[0][0]
    assert query(env.warehouse_url, "select count(*) from analytics.orders") == [(shop_orders,)]
    (success,) = outcome_alerts(alerts)
    assert success["title"].startswith(f"[elt] {PIPELINE}: succeeded")
    assert f"run {run_id}" in success["message"]


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
    log = env.config_file.parent / "serve.log"
    process = start_serve([PIPELINE], log)
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
