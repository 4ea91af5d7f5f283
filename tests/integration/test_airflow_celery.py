"""Airflow's real scheduler on the CeleryExecutor: ``elt airflow up --executor celery`` starts
Redis on 127.0.0.1 and two Celery workers, each in its own empty folder; ``jaffle_daily`` is
triggered through the REST API, and the run must succeed with its marts published.

A cluster policy (``airflow_local_settings.py`` in the scheduler's ``AIRFLOW_HOME/config``)
sends the steps to alternating workers' queues, so every hand-over between steps (run id,
raw data, dbt results, gate, publish) crosses from one worker's folder to the other's: the
run can only succeed if no task read a file another task wrote.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.helpers.airflow_api import AirflowApi
from tests.helpers.orchestrators import isolated_env, project_document, query
from tests.helpers.process_env import free_port

pytestmark = pytest.mark.integration

PIPELINE = "jaffle_daily"
DOWNSTREAM = "supplies_after"  # depends_on: [jaffle_daily], no schedule of its own
RUN_TIMEOUT_S = 900
PARSE_TIMEOUT_S = 300
# step (first part of the task id) → the worker queue the policy sends it to
QUEUES = {
    "start_run": "worker-1",
    "ingest": "worker-2",
    "dbt": "worker-1",
    "quality_gate": "worker-2",
    "publish": "worker-1",
    "export": "worker-2",
    "notify": "worker-1",
}
POLICY = f"""
QUEUES = {QUEUES!r}


def task_policy(task):
    step = task.task_id.split(".")[0]
    if step in QUEUES:
        task.queue = QUEUES[step]
"""


@pytest.fixture(scope="module")
def celery_airflow(pg, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    """The demo sources, then `elt airflow up --executor celery` (in this process); every
    process it started is stopped by PID afterwards."""
    home = tmp_path_factory.mktemp("airflow-celery")
    document = project_document()
    document["pipelines"] = {PIPELINE: document["pipelines"][PIPELINE]}
    document["pipelines"][PIPELINE]["retries"] = {"count": 0, "delay": "1s"}
    # triggered by hand: a first run loads everything (a scheduled first run would read only
    # its one-day interval); schedules firing and intervals: test_airflow_backfill.py
    document["pipelines"][PIPELINE]["schedule"] = None
    document["pipelines"][PIPELINE]["notify"] = {"on": ["failure"], "urls": ["env:ALERT_URL"]}
    document["pipelines"][DOWNSTREAM] = {
        "sources": ["landing"],
        "dbt": {"select": ["+supplies"]},
        "depends_on": [PIPELINE],
        "retries": {"count": 0, "delay": "1s"},
    }
    airflow_home = home / "airflow"
    (airflow_home / "config").mkdir(parents=True)
    (airflow_home / "config" / "airflow_local_settings.py").write_text(POLICY)
    pg.create_database("airflow")  # a fresh metadata database on the test server
    extra = {"AIRFLOW_HOME": str(airflow_home)}
    with isolated_env(
        pg, home, warehouse_db="celery_wh", shop_db="celery_shop", config=document, extra_env=extra
    ) as env:
        from orchestration.airflow import local

        try:
            url = local.up(free_port(), progress=lambda _: None, executor="celery", workers=2)
            yield env, url, local.services()
        finally:
            started = [s for s in local.services() if s.pid]
            local.down()
            for service in started:
                assert not psutil.pid_exists(service.pid) or not service.running, service


def test_celery_up_starts_redis_and_two_workers_in_their_own_folders(celery_airflow):
    env, _, services = celery_airflow
    names = {s.name: s for s in services}
    assert {"api-server", "scheduler", "dag-processor", "redis", "worker-1", "worker-2"} == set(
        names
    )
    assert all(s.running for s in services)
    redis = psutil.Process(names["redis"].pid)
    listening = {c.laddr.ip for c in redis.net_connections(kind="tcp") if c.status == "LISTEN"}
    assert listening == {"127.0.0.1"}
    folders = {psutil.Process(names[w].pid).cwd() for w in ("worker-1", "worker-2")}
    assert len(folders) == 2
    for folder in folders:  # Celery rewrites its process title over /proc/PID/environ
        assert Path(folder, "home").is_dir() and not Path(folder).is_relative_to(env.home / "dlt")


def test_triggered_run_succeeds_across_both_workers(celery_airflow):
    env, url, services = celery_airflow
    api = AirflowApi(url)
    api.wait_for_dag(PIPELINE, PARSE_TIMEOUT_S)
    api.wait_for_dag(DOWNSTREAM, PARSE_TIMEOUT_S)
    api.call("PATCH", f"/dags/{DOWNSTREAM}", {"is_paused": False})  # waits for the asset
    api.call("PATCH", f"/dags/{PIPELINE}", {"is_paused": False})
    run = api.call("POST", f"/dags/{PIPELINE}/dagRuns", {"logical_date": None})

    (finished,) = api.wait_for_runs(PIPELINE, 1, RUN_TIMEOUT_S)
    assert finished["dag_run_id"] == run["dag_run_id"]
    instances = api.task_instances(PIPELINE, finished["dag_run_id"])
    not_done = {t["task_id"]: t["state"] for t in instances if t["state"] != "success"}
    assert finished["state"] == "success", not_done
    # every step ran on the worker its queue names, in that worker's own process tree
    worker_pids = {s.name: s.pid for s in services if s.name.startswith("worker-")}
    never_sent = [t for t in instances if not t["hostname"]]  # the scheduler skips these
    assert {t["operator"] for t in never_sent} <= {"EmptyOperator"}, never_sent
    instances = [t for t in instances if t["hostname"]]
    for instance in instances:
        step = instance["task_id"].split(".")[0]
        worker = QUEUES.get(step, instance["hostname"].split("@")[0])
        assert instance["queue"] in (worker, "default")
        assert instance["hostname"].startswith(f"{worker}@"), instance
    assert {t["hostname"].split("@")[0] for t in instances} == {"worker-1", "worker-2"}
    assert len({t["pid"] for t in instances}) > 2  # one process per task, not one per worker
    for name, pid in worker_pids.items():
        assert psutil.pid_exists(pid), name
    # the marts are published, with the orders of the demo shop
    published = query(env.warehouse_url, "select count(*) from analytics.orders")[0][0]
    shop_orders = query(env.shop_url, "select count(*) from orders")[0][0]
    assert published == shop_orders > 0
    # nothing a task wrote landed in the developer's state folder: the workers' own folders
    assert not (Path(env.home) / "dlt").exists()


def test_depends_on_runs_the_downstream_dag_after_the_upstream_published(celery_airflow):
    """The scheduler starts the downstream pipeline's DAG run from the asset the upstream's
    publish updated (the DAG has no schedule of its own), once that publish is done."""
    env, url, _ = celery_airflow
    api = AirflowApi(url)
    (downstream,) = api.wait_for_runs(DOWNSTREAM, 1, RUN_TIMEOUT_S)
    assert downstream["state"] == "success", downstream
    assert "asset" in str(downstream.get("run_type", "")).lower(), downstream
    runs = query(
        env.warehouse_url,
        "select r.pipeline, r.status, r.started_at, s.finished_at from elt_meta.runs r"
        " left join elt_meta.steps s on s.run_id = r.run_id and s.step_id = 'publish'"
        " where r.pipeline in (%s, %s) order by r.started_at",
        (PIPELINE, DOWNSTREAM),
    )
    assert [(r[0], r[1]) for r in runs] == [(PIPELINE, "succeeded"), (DOWNSTREAM, "succeeded")]
    assert runs[1][2] >= runs[0][3]  # it started after the upstream's publish had finished
