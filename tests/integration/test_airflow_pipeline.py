"""The Airflow DAGs end to end: DAG integrity, a full run on the demo sources, a failing dbt
test that closes the gate, and a retry of the failed node.

Airflow runs in subprocesses (``python -m orchestration.airflow.testing …``, the same helper
``elt airflow test`` uses) with ``AIRFLOW_HOME`` and a SQLite metadata database in this
module's own state folder, so Airflow's global configuration never leaks into other tests.
The module gets its own warehouse database, shop database and webhook server.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.orchestrators import (
    OrchestrationEnv,
    airflow,
    isolated_env,
    latest_run_id,
    project_document,
    query,
    step_statuses,
)

pytestmark = pytest.mark.integration

FULL = "jaffle_daily"
CHECK = "orders_check"  # shop only, one staging model: the failing-test scenario
WAREHOUSE_DB = "airflow_flow_wh"
SHOP_DB = "airflow_shop"
BAD_ORDER = "airflow-test-bad-order"
FAILING_TEST = "expression_is_true_stg_shop__orders_order_total_subtotal_tax_paid"


Env = OrchestrationEnv


def _test_config() -> dict:
    """The project's pipelines.yml: alerts on success too, quick retries, plus ``orders_check``."""
    document = project_document()
    full = document["pipelines"][FULL]
    full["notify"] = {"on": ["failure", "quality_warning", "success"], "urls": ["env:ALERT_URL"]}
    full["retries"] = {"count": 1, "delay": "1s"}
    document["pipelines"] = {
        FULL: full,
        CHECK: {
            "description": "stg_shop__orders and its tests only",
            "schedule": "0 6 * * *",
            "owner": "qa-team",
            "tags": ["check"],
            "retries": {"count": 0, "delay": "1s"},
            "sources": ["shop"],
            "dbt": {"select": ["stg_shop__orders"]},
            "notify": {"on": ["failure", "success"], "urls": ["env:ALERT_URL"]},
        },
    }
    return document


@pytest.fixture(scope="module")
def env(pg, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """Isolated state, warehouse, demo sources, webhook, dbt manifest, Airflow metadata DB."""
    home = tmp_path_factory.mktemp("airflow-elt")
    config = _test_config()
    with isolated_env(pg, home, warehouse_db=WAREHOUSE_DB, shop_db=SHOP_DB, config=config) as env:
        from orchestration.airflow import manifest

        manifest.parse_manifest()
        airflow("migrate")
        yield env


# -- DAG integrity ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dagbag(env: Env) -> dict:
    return airflow("inspect")


def test_every_pipeline_yields_one_dag_without_import_errors(dagbag):
    assert dagbag["import_errors"] == {}
    assert sorted(dagbag["dags"]) == [FULL, CHECK]
    assert dagbag["parse_s"] < 30


def test_dag_settings_come_from_pipelines_yml(dagbag):
    full, check = dagbag["dags"][FULL], dagbag["dags"][CHECK]
    assert full["tags"] == ["demo", "elt", "jaffle"] and check["tags"] == ["check", "elt"]
    assert full["max_active_runs"] == 1 and full["catchup"] is False
    assert full["start_date"].startswith("2026-01-01")
    assert "0 6 * * *" in check["schedule"]
    assert {t["owner"] for t in check["tasks"].values()} == {"qa-team"}


def test_task_ids_and_dependencies_follow_the_plan(dagbag):
    tasks = dagbag["dags"][FULL]["tasks"]
    ingest = {"ingest.shop", "ingest.social", "ingest.landing"}
    assert {"start_run", "quality_gate", "publish", "export", "notify"} | ingest <= tasks.keys()
    for task_id in ingest:
        assert tasks[task_id]["upstream"] == ["start_run"]
    assert tasks["dbt.dbt_producer_watcher"]["upstream"] == sorted(ingest)
    assert tasks["dbt.dbt_producer_watcher"]["type"] == "RebuildingProducer"  # builds when cleared
    # one task per model (and its tests), all after the one dbt build
    assert {"dbt.orders.run", "dbt.orders.test", "dbt.customers.run"} <= tasks.keys()
    assert "dbt.stg_shop__orders.test" in tasks["dbt.orders.run"]["upstream"]
    assert tasks["dbt.orders.test"]["upstream"] == ["dbt.orders.run"]
    roots = [t for t, v in tasks.items() if v["upstream"] == ["dbt.dbt_producer_watcher"]]
    assert "dbt.stg_shop__orders.run" in roots
    assert all(tasks[t]["trigger_rule"] == "all_done" for t in roots if not t.endswith("_done"))
    assert tasks["quality_gate"]["trigger_rule"] == "all_done"
    assert "dbt.customers.test" in tasks["quality_gate"]["upstream"]
    assert tasks["publish"]["upstream"] == ["quality_gate"]
    assert tasks["export"]["upstream"] == ["publish"]
    assert tasks["notify"]["is_teardown"] and tasks["notify"]["upstream"] == ["export", "start_run"]


def test_pools_retries_and_timeouts_as_configured(dagbag):
    tasks = dagbag["dags"][FULL]["tasks"]
    assert tasks["ingest.shop"]["pool"] == "database"
    assert tasks["ingest.social"]["pool"] == "api"
    assert tasks["ingest.landing"]["pool"] == "file_io"
    assert tasks["dbt.dbt_producer_watcher"]["pool"] == "database"
    assert tasks["ingest.shop"]["retries"] == 1 and tasks["ingest.shop"]["retry_delay_s"] == 1
    assert tasks["ingest.shop"]["timeout_s"] == 30 * 60  # limits.max_task_duration
    # a failed check is a fact about the data: never retried; dbt nodes are retried by clearing
    assert tasks["quality_gate"]["retries"] == 0
    assert {t["retries"] for k, t in tasks.items() if k.startswith("dbt.")} == {0}
    check = dagbag["dags"][CHECK]["tasks"]
    assert check["ingest.shop"]["retries"] == 0


def test_publish_updates_one_asset_per_mart(dagbag):
    outlets = dagbag["dags"][FULL]["tasks"]["publish"]["outlets"]
    assert f"elt.published.{FULL}" in outlets
    assert {"elt.analytics.orders", "elt.analytics.customers"} <= set(outlets)
    assert not any("stg_" in name for name in outlets)


def test_broken_pipelines_yml_is_one_clear_import_error(env: Env, tmp_path: Path):
    broken = tmp_path / "pipelines.yml"
    broken.write_text("version: 1\npipelines:\n  oops:\n    sources: [nowhere]\n")
    found = airflow(
        "inspect",
        env={"ELT_CONFIG": str(broken), "AIRFLOW__CORE__DAGBAG_IMPORT_ERROR_TRACEBACKS": "False"},
    )
    assert found["dags"] == {}
    assert len(found["import_errors"]) == 1
    ((file, message),) = found["import_errors"].items()
    assert file.endswith("elt_pipelines.py")
    assert "nowhere" in message and "pipelines.yml" in message
    assert "Traceback" not in message and "site-packages" not in message


# -- a full run ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def first_run(env: Env) -> tuple[dict, list]:
    env.webhook.received.clear()
    outcome = airflow("run", FULL)
    return outcome, list(env.webhook.received)


def _run_id(env: Env, pipeline: str) -> str:
    return latest_run_id(env.warehouse_url, pipeline, "airflow")


def test_dag_run_publishes_marts_and_records_the_run(env: Env, first_run):
    outcome, alerts = first_run
    assert "success" in outcome["state"], outcome["task_states"]
    assert set(outcome["task_states"].values()) == {"success"}
    shop_orders = query(env.shop_url, "select count(*) from orders")[0][0]
    assert query(env.warehouse_url, "select count(*) from analytics.orders")[0][0] == shop_orders

    run_id = _run_id(env, FULL)
    (run,) = query(
        env.warehouse_url,
        "select status, finished_at is not null, duration_s from elt_meta.runs where run_id = %s",
        (run_id,),
    )
    assert run[:2] == ("succeeded", True) and run[2] > 0
    steps = {
        row[0]: row[1:]
        for row in query(
            env.warehouse_url,
            "select step_id, status, duration_s, rows, peak_rss_mb, cpu_s from elt_meta.steps"
            " where run_id = %s",
            (run_id,),
        )
    }
    plan_steps = {
        "ingest_shop",
        "ingest_social",
        "ingest_landing",
        "dbt_build",
        "quality_gate",
        "publish",
        "export",
        "notify",
    }
    assert plan_steps <= steps.keys()
    assert all(s[0] == "succeeded" and s[1] >= 0 and s[3] > 0 and s[4] >= 0 for s in steps.values())
    assert steps["ingest_shop"][2] > 0 and steps["dbt_build"][2] > 0
    statuses = dict(
        query(
            env.warehouse_url,
            "select status, count(*) from elt_meta.dbt_results where run_id = %s group by 1",
            (run_id,),
        )
    )
    assert statuses.get("success", 0) >= 17 and statuses.get("pass", 0) > 50, statuses
    assert not {"error", "fail", "skipped", "runtime error"} & statuses.keys()

    assert len(alerts) == 1, alerts  # the notify task reports; the DAG notifier stays quiet
    assert alerts[0]["title"].startswith(f"[elt] {FULL}: succeeded")
    assert f"run {run_id}" in alerts[0]["message"]
    assert "shop.orders:" in alerts[0]["message"]


def test_no_secret_in_airflow_task_records(env: Env, first_run):
    db = env.home / "airflow" / "airflow.db"
    conn = sqlite3.connect(db)
    try:
        text = json.dumps(
            [
                conn.execute("select * from rendered_task_instance_fields").fetchall(),
                conn.execute("select * from xcom").fetchall(),
                conn.execute("select * from dag_run").fetchall(),
            ],
            default=str,
        )
    finally:
        conn.close()
    logs = (env.home / "airflow-subprocess.log").read_text(errors="replace")
    assert "dbt.stg_shop__orders.run" in logs  # the task logs are there
    # the producer logs dbt's lines and pushes no per-node XComs (node tasks read elt_meta)
    conn = sqlite3.connect(db)
    try:
        keys = conn.execute("select key from xcom where task_id like '%producer%'").fetchall()
    finally:
        conn.close()
    assert sorted(set(keys)) == [("producer_cmd_flags",), ("task_status",)], keys
    for secret in env.secrets:
        assert secret not in text
        assert secret not in logs


# -- a failing dbt test, then a retry of the failed node ------------------------------------


@pytest.fixture(scope="module")
def failed_run(env: Env, first_run) -> tuple[dict, list]:
    # an order whose total is not subtotal + tax: the test on stg_shop__orders must catch it
    query(
        env.shop_url,
        "insert into orders (id, customer, ordered_at, store_id, subtotal, tax_paid, order_total)"
        " select %s, customer, ordered_at + interval '1 minute', store_id, 1000, 60, 9999"
        " from orders order by ordered_at desc limit 1",
        (BAD_ORDER,),
    )
    env.webhook.received.clear()
    try:
        outcome = airflow("run", CHECK)
    finally:
        query(env.shop_url, "delete from orders where id = %s", (BAD_ORDER,))
    return outcome, list(env.webhook.received)


def test_failing_dbt_test_fails_at_the_gate_skips_publish_and_alerts(env: Env, failed_run):
    outcome, alerts = failed_run
    states = outcome["task_states"]
    assert "failed" in outcome["state"]
    assert states["dbt.stg_shop__orders.run"] == "success"
    assert states["dbt.stg_shop__orders.test"] == "failed"
    assert states["quality_gate"] == "failed"
    assert states["publish"] == "upstream_failed"
    assert states["notify"] == "success"
    run_id = _run_id(env, CHECK)
    (gate,) = query(
        env.warehouse_url,
        "select status, detail->>'error' from elt_meta.steps where run_id = %s"
        " and step_id = 'quality_gate'",
        (run_id,),
    )
    assert gate[0] == "failed" and FAILING_TEST in gate[1]
    assert query(
        env.warehouse_url, "select status from elt_meta.runs where run_id = %s", (run_id,)
    ) == [("failed",)]
    assert len(alerts) == 1, alerts
    assert alerts[0]["title"].startswith(f"[elt] {CHECK}: failed")
    assert FAILING_TEST in alerts[0]["message"]
    assert "Got 1 result" in alerts[0]["message"]  # the observed value


def test_retrying_the_failed_node_reruns_its_tests(env: Env, failed_run):
    outcome, _ = failed_run
    run_id = _run_id(env, CHECK)
    # the bad row is removed in the warehouse; then "clear with downstream" on the model's task
    query(env.warehouse_url, "delete from raw_shop.orders where id = %s", (BAD_ORDER,))
    retried = airflow(
        "retry", CHECK, "--run-id", outcome["run_id"], "--task", "dbt.stg_shop__orders.run"
    )
    states = retried["task_states"]
    assert states["dbt.stg_shop__orders.run"] == "success"
    assert states["dbt.stg_shop__orders.test"] == "success"
    assert states["quality_gate"] == "success" and states["publish"] == "success"
    # the retry ran dbt again for the model and for its tests, recorded as their own steps
    steps = step_statuses(env.warehouse_url, run_id)
    assert steps["dbt.stg_shop__orders.run"] == "succeeded"
    assert steps["dbt.stg_shop__orders.test"] == "succeeded"
    _assert_the_failing_test_passes_and_the_run_succeeded(env, run_id)
    # … and only those: the producer did not build again
    assert _build_detail(env, run_id)["try"] == 1


def _assert_the_failing_test_passes_and_the_run_succeeded(env: Env, run_id: str) -> None:
    (status,) = query(
        env.warehouse_url,
        "select status from elt_meta.dbt_results where run_id = %s and unique_id like %s",
        (run_id, f"test.elt.{FAILING_TEST}.%"),
    )
    assert status == ("pass",)
    assert query(
        env.warehouse_url, "select status from elt_meta.runs where run_id = %s", (run_id,)
    ) == [("succeeded",)]


def _build_detail(env: Env, run_id: str) -> dict:
    (detail,) = query(
        env.warehouse_url,
        "select detail from elt_meta.steps where run_id = %s and step_id = 'dbt_build'",
        (run_id,),
    )
    return detail[0]


def _node_steps(env: Env, run_id: str) -> dict:
    statement = (
        "select step_id, finished_at from elt_meta.steps"
        " where run_id = %s and step_id like 'dbt.%%'"
    )
    return dict(query(env.warehouse_url, statement, (run_id,)))


def test_clearing_the_whole_run_builds_once_and_the_node_tasks_report_it(env: Env, failed_run):
    """A whole DAG run cleared (as a backfill --rerun does): the producer builds again
    (Cosmos' would skip), and the node tasks report that build instead of re-running
    their nodes beside it."""
    outcome, _ = failed_run
    run_id = _run_id(env, CHECK)
    query(env.warehouse_url, "delete from raw_shop.orders where id = %s", (BAD_ORDER,))
    nodes_before = _node_steps(env, run_id)

    cleared = airflow("retry", CHECK, "--run-id", outcome["run_id"], "--task", "start_run")

    assert set(cleared["task_states"].values()) == {"success"}, cleared["task_states"]
    with sqlite3.connect(env.home / "airflow" / "airflow.db") as conn:
        (clears,) = conn.execute(
            "select clear_number from dag_run where run_id = ?", (outcome["run_id"],)
        ).fetchone()
    build = _build_detail(env, run_id)
    assert build["try"] == 2 and build["clears"] == clears >= 1
    assert build["nodes"] > 1 and build["failed"] == 0
    assert _node_steps(env, run_id) == nodes_before  # no node ran dbt itself
    _assert_the_failing_test_passes_and_the_run_succeeded(env, run_id)
