"""Unit tests of the Airflow factory's pure parts: selectors, run ids, limits, settling a run.

No Airflow import here (the factory's Airflow parts are tested in
``tests/integration/test_airflow_pipeline.py`` through a real DagBag and real DAG runs).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from elt.config import load
from elt.lifecycle import settle
from elt.runs import DbtResultRecord, StepRecord
from elt.steps import RunResult, StepError, node_name
from orchestration.airflow import environment, pools, run_state
from orchestration.airflow.cosmos_group import cosmos_selectors
from orchestration.airflow.node_tasks import REPORT, RERUN, SKIP, after_clear, judge
from orchestration.airflow.report import task_failures

CONFIG = """
version: 1
sources:
  shop: {type: sql_database, credentials: env:SHOP_DB_URL, tables: {orders: {primary_key: id}}}
pipelines:
  daily:
    sources: [shop]
    limits: {max_duration: 10m, max_task_duration: 2m}
pools: {database: 3, api: 7}
"""


@pytest.fixture
def config(tmp_path: Path):
    path = tmp_path / "pipelines.yml"
    path.write_text(CONFIG)
    return load(path)


@pytest.fixture
def dbt_project(tmp_path: Path) -> Path:
    for folder in ("models/marts", "models/staging/shop", "seeds/reference"):
        (tmp_path / folder).mkdir(parents=True)
    return tmp_path


def step(step_id: str, seconds: float, status: str = "succeeded") -> StepRecord:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return StepRecord(step_id, "ingest", status, start, start + timedelta(seconds=seconds))


# -- selectors ----------------------------------------------------------------------------


def test_bare_folder_selectors_become_paths_with_graph_operators_kept(dbt_project: Path):
    got = cosmos_selectors(
        ["+marts", "marts+", "2+marts+1", "@staging/shop", "reference", "orders", "tag:daily"],
        dbt_project,
    )
    assert got == [
        "+path:models/marts",
        "path:models/marts+",
        "2+path:models/marts+1",
        "@path:models/staging/shop",
        "path:seeds/reference",
        "orders",
        "tag:daily",
    ]


def test_intersections_and_methods_are_translated_part_by_part(dbt_project: Path):
    assert cosmos_selectors(["marts,tag:x", "config.materialized:table"], dbt_project) == [
        "path:models/marts,tag:x",
        "config.materialized:table",
    ]


# -- run ids and node names -----------------------------------------------------------------


def test_elt_run_id_is_stable_per_dag_run_and_sortable():
    started = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    first = run_state.elt_run_id("daily", "manual__2026-03-04T05:06:07+00:00", started)
    again = run_state.elt_run_id("daily", "manual__2026-03-04T05:06:07+00:00", started)
    other = run_state.elt_run_id("daily", "scheduled__2026-03-04T05:06:07+00:00", started)
    assert first == again != other
    assert first.startswith("daily-20260304T050607-") and len(first.rsplit("-", 1)[1]) == 12


def test_node_names_are_readable():
    assert node_name("test.elt.not_null_orders_order_id.5f3a2c1b9d") == "not_null_orders_order_id"
    assert node_name("test.elt.assert_totals_match") == "assert_totals_match"
    assert node_name("model.elt.orders") == "orders"
    assert node_name("unit_test.elt.orders.numbering") == "orders.numbering"


# -- settling a run from its records and task states ------------------------------------------


def test_a_run_with_a_failed_step_is_failed_with_that_steps_error():
    result = RunResult(run_id="r1", pipeline="daily")
    failed = step("quality_gate", 1, "failed")
    failed.detail = {"error": "quality gate closed: not_null_x: Got 3 results"}
    result.steps = [step("ingest_shop", 2), failed]
    result.started -= 5
    settle(result, task_failures([("quality_gate", "failed")]))
    assert result.status == "failed"
    assert result.error == "quality_gate: quality gate closed: not_null_x: Got 3 results"
    assert 4 < result.duration_s < 60


def test_a_task_that_never_recorded_itself_still_fails_the_run():
    result = RunResult(run_id="r1", pipeline="daily", steps=[step("ingest_shop", 2)])
    failed = [("publish", "upstream_failed"), ("dbt.dbt_producer_watcher", "failed")]
    settle(result, task_failures(failed))
    assert result.status == "failed"
    assert result.error == "task dbt.dbt_producer_watcher failed"


def test_a_run_without_failures_succeeded():
    result = RunResult(run_id="r1", pipeline="daily", steps=[step("ingest_shop", 2)])
    settle(result, [])
    assert (result.status, result.error) == ("succeeded", None)


# -- environment and pools ------------------------------------------------------------------


def test_pools_come_from_the_config(config):
    assert pools.wanted_pools(config)["database"] == 3
    assert pools.wanted_pools(config)["api"] == 7


def test_airflow_env_keeps_homes_in_the_project_and_holds_no_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("ELT_HOME", str(tmp_path))
    # homes a deployment already set are kept (elt.settings.tool_homes): start without them
    for home in ("AIRFLOW_HOME", "AIRFLOW__COSMOS__CACHE_DIR", "PREFECT_HOME", "DLT_DATA_DIR"):
        monkeypatch.delenv(home, raising=False)
    env = environment.base_env()
    assert env["AIRFLOW_HOME"] == str(tmp_path / "airflow")
    assert env["AIRFLOW__COSMOS__CACHE_DIR"] == str(tmp_path / "cosmos")
    assert env["AIRFLOW__COSMOS__ENABLE_TELEMETRY"] == "False"
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(environment.DAGS_FOLDER)
    assert not any("PASSWORD" in key or "JWT" in key for key in env)
    assert "DBT_ENV_SECRET_PGPASSWORD" not in env


def test_the_dags_folder_holds_one_entry_file_that_dbt_will_not_import():
    files = sorted(p.name for p in environment.DAGS_FOLDER.glob("*.py"))
    assert files == ["elt_pipelines.py"]
    text = (environment.DAGS_FOLDER / "elt_pipelines.py").read_text()
    # Airflow's safe-mode discovery only parses files mentioning both words
    assert "airflow" in text and "DAG" in text
    assert not any(p.name.startswith("dbt_") for p in environment.DAGS_FOLDER.parent.rglob("*.py"))


def test_the_dag_file_names_the_airflow_modules_the_dag_processor_can_pre_import():
    # the DAG processor imports a file's top-level `airflow.*` imports once, before it forks
    # each parse: the operators the factory builds must be among them
    import ast

    tree = ast.parse((environment.DAGS_FOLDER / "elt_pipelines.py").read_text())
    imported = {node.module for node in tree.body if isinstance(node, ast.ImportFrom)}
    assert "airflow.providers.standard.operators.python" in imported
    assert "airflow.sdk" in imported


# -- dbt node tasks -------------------------------------------------------------------------


def _result(name: str, status: str, message: str | None = None) -> DbtResultRecord:
    return DbtResultRecord(f"test.elt.{name}.ab12", "test", status, 0.1, None, None, message)


def test_a_node_task_fails_naming_the_failed_test_and_dbts_message():
    results = [
        _result("not_null_orders_id", "pass"),
        _result("orders_total_check", "fail", "Got 1 result, configured to fail if != 0"),
    ]
    with pytest.raises(StepError) as failed:
        judge(results)
    assert "orders_total_check: Got 1 result" in str(failed.value)
    assert "not_null_orders_id" not in str(failed.value)


@pytest.mark.parametrize(
    ("run_clears", "build_clears", "producer", "action"),
    [
        # the node (with downstream) cleared after a first run: the build is older, re-run it
        (1, 0, "failed", RERUN),
        (1, 0, "success", RERUN),
        # the whole run cleared (backfill --rerun): the producer built again for this clear
        (1, 1, "success", REPORT),
        (1, 1, "failed", REPORT),
        # a node cleared alone once, then the whole run: try numbers drifted apart, clears did not
        (2, 2, "success", REPORT),
        # ... then that node alone again
        (3, 2, "success", RERUN),
        # no build recorded in this run: re-run, unless dbt never ran in it
        (1, None, "failed", RERUN),
        (1, None, "upstream_failed", SKIP),
        # the whole run cleared after an ingest failure: the producer could not run
        (1, 0, "upstream_failed", SKIP),
        (1, 0, "skipped", SKIP),
    ],
)
def test_a_cleared_node_task_reruns_its_node_only_when_cleared_without_the_producer(
    run_clears, build_clears, producer, action
):
    assert after_clear(run_clears, build_clears, producer) == action


def test_a_node_task_with_passing_or_warning_results_succeeds():
    judge([_result("not_null_orders_id", "pass"), _result("freshness", "warn", "Got 2")])
    judge([])  # a model without tests: its test task has nothing to report


def test_dbt_results_are_read_where_dbt_target_path_sends_them(monkeypatch, tmp_path):
    from orchestration.airflow.tasks import dbt_target_dir

    monkeypatch.delenv("DBT_TARGET_PATH", raising=False)
    assert dbt_target_dir(str(tmp_path)) == tmp_path / "target"
    monkeypatch.setenv("DBT_TARGET_PATH", "build/artifacts")
    assert dbt_target_dir(str(tmp_path)) == tmp_path / "build" / "artifacts"
    monkeypatch.setenv("DBT_TARGET_PATH", "/var/dbt/target")
    assert dbt_target_dir(str(tmp_path)) == Path("/var/dbt/target")


def test_a_manifest_named_by_elt_dbt_manifest_is_taken_when_dbt_says_it_is_this_project(
    tmp_path, monkeypatch
):
    """The image bakes `dbt parse`'s manifest and names it with ELT_DBT_MANIFEST (no stamp):
    it is used for its own project and refused for another."""
    import json

    from elt import project as dbt_project
    from orchestration.airflow.manifest import ManifestError, require_manifest

    project = dbt_project.of()
    baked = tmp_path / "manifest.json"
    monkeypatch.setenv("ELT_DBT_MANIFEST", str(baked))
    baked.write_text(json.dumps({"metadata": {"project_name": project.name}, "nodes": {}}))
    assert require_manifest(project) == baked
    baked.write_text(json.dumps({"metadata": {"project_name": "someone_else"}, "nodes": {}}))
    with pytest.raises(ManifestError, match="has no stamp"):
        require_manifest(project)


def test_the_producer_logs_dbts_lines_without_xcoms(caplog):
    from orchestration.airflow.cosmos_group import log_dbt_line

    caplog.set_level(logging.DEBUG, logger="orchestration.airflow.cosmos_group")
    event = {"info": {"msg": "1 of 3 OK created sql view model audit.m0", "level": "info"}}
    log_dbt_line(json.dumps(event), {"context": None})
    log_dbt_line(json.dumps({"info": {"msg": "Database Error in m1", "level": "error"}}))
    log_dbt_line(json.dumps({"info": {"name": "NoMessage"}}))  # nothing to say
    log_dbt_line("Going to open: https://example.invalid/login")  # not JSON: kept as is
    log_dbt_line("")
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("INFO", "1 of 3 OK created sql view model audit.m0"),
        ("ERROR", "Database Error in m1"),
        ("INFO", "Going to open: https://example.invalid/login"),
    ]
