"""The run lifecycle under `elt run`: retries, timeouts, limits, the lease across
orchestrators, runs whose process died, SIGTERM, and depends_on.

Faults are injected by step name (``ELT_FAILPOINTS``); the pipelines are small (the demo's
landing files, one staging model) so that each run takes seconds.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from elt import lease, paths
from tests.helpers.lifecycle import free_pipelines, hold, kill
from tests.helpers.orchestrators import OrchestrationEnv, isolated_env, project_document, query

pytestmark = pytest.mark.integration

EVERY_EVENT = ["failure", "quality_warning", "success", "limit_exceeded"]


def _config() -> dict:
    document = project_document()
    tiny = {
        "sources": ["landing"],
        # one staging model, without the test that needs another source's model
        "dbt": {"select": ["stg_landing__supplies"], "exclude": ["test_name:relationships"]},
        "publish": "none",
        "retries": {"count": 2, "delay": "1s"},
        "notify": {"on": EVERY_EVENT, "urls": ["env:ALERT_URL"]},
    }
    document["pipelines"] = {
        "tiny": tiny,
        "tiny_slow": {**tiny, "execution_timeout": "3s"},
        "tiny_limited": {**tiny, "limits": {"max_duration": "1s"}},
        "tiny_after": {**tiny, "depends_on": ["tiny"]},
    }
    return document


@pytest.fixture(scope="module")
def env(pg, tmp_path_factory) -> Iterator[OrchestrationEnv]:
    home = tmp_path_factory.mktemp("lifecycle")
    with isolated_env(
        pg, home, warehouse_db="lifecycle_wh", shop_db="lifecycle_shop", config=_config()
    ) as made:
        yield made


@pytest.fixture(autouse=True)
def _fresh(env: OrchestrationEnv, monkeypatch) -> Iterator[None]:
    env.webhook.take()
    monkeypatch.delenv("ELT_FAILPOINTS", raising=False)
    yield
    free_pipelines(env.warehouse_url)


def _run(pipeline: str):
    from elt.config import load
    from elt.runner import run_pipeline

    return run_pipeline(load(), pipeline)


def _steps(env: OrchestrationEnv, run_id: str) -> dict[str, tuple[str, dict]]:
    found = query(
        env.warehouse_url,
        "select step_id, status, detail from elt_meta.steps where run_id = %s",
        (run_id,),
    )
    return {step: (status, detail) for step, status, detail in found}


def _run_row(env: OrchestrationEnv, run_id: str) -> tuple[str, str | None]:
    return query(
        env.warehouse_url, "select status, error from elt_meta.runs where run_id = %s", (run_id,)
    )[0]


def _events(env: OrchestrationEnv) -> list[str]:
    """The alerts received since the last call, as "title" lines."""
    return [alert["title"] for alert in env.webhook.take()]


def test_a_step_that_fails_twice_then_passes_is_retried_and_the_run_succeeds(env, monkeypatch):
    monkeypatch.setenv("ELT_FAILPOINTS", json.dumps({"ingest_landing": {"fail_attempts": 2}}))
    result = _run("tiny")
    assert result.status == "succeeded", result.error
    status, detail = _steps(env, result.run_id)["ingest_landing"]
    assert (status, detail["attempt"]) == ("succeeded", 3)
    assert _run_row(env, result.run_id) == ("succeeded", None)
    assert [t.split(":")[1].split("(")[0].strip() for t in _events(env)] == ["succeeded"]


def test_a_step_that_keeps_failing_fails_the_run_after_its_retries(env, monkeypatch):
    monkeypatch.setenv("ELT_FAILPOINTS", json.dumps({"ingest_landing": {"fail_attempts": 9}}))
    result = _run("tiny")
    assert result.status == "failed"
    expected = "ingest_landing: injected failure of ingest_landing (attempt 3)"
    assert result.error == expected
    steps = _steps(env, result.run_id)
    assert steps["ingest_landing"][1]["attempt"] == 3
    assert "dbt_build" not in steps and steps["notify"][0] == "succeeded"
    assert _run_row(env, result.run_id) == ("failed", expected)
    assert len(_events(env)) == 1


def test_a_hanging_step_is_stopped_at_its_timeout_and_not_retried(env, monkeypatch):
    monkeypatch.setenv("ELT_FAILPOINTS", json.dumps({"ingest_landing": {"sleep_s": 120}}))
    started = time.monotonic()
    result = _run("tiny_slow")
    assert time.monotonic() - started < 60
    assert (result.status, result.error) == ("failed", "ingest_landing: timed out after 3 s")
    status, detail = _steps(env, result.run_id)["ingest_landing"]
    assert (status, detail["attempt"], detail["timed_out"]) == ("failed", 1, True)
    assert _run_row(env, result.run_id) == ("failed", "ingest_landing: timed out after 3 s")


def test_a_breached_duration_limit_sends_one_limit_alert(env):
    result = _run("tiny_limited")
    assert result.status == "succeeded"
    titles = _events(env)
    limit_alerts = [t for t in titles if "duration limit(s) exceeded" in t]
    assert len(limit_alerts) == 1 and len(titles) == 2, titles
    _, detail = _steps(env, result.run_id)["notify"]
    assert detail["limits_exceeded"][0].startswith("run took")


@pytest.mark.parametrize("orchestrator", ["elt", "prefect", "airflow"])
def test_a_run_of_any_kind_refuses_a_second_one_naming_the_holder(env, orchestrator):
    from elt.lease import PipelineBusyError

    holder, run_id = hold("tiny", orchestrator)
    try:
        with pytest.raises(PipelineBusyError) as refused:
            _run("tiny")
        assert re.fullmatch(
            rf"pipeline 'tiny' is already running \(run {run_id}, started \S+ \S+ \S+,"
            rf" by {orchestrator}\); wait for it to finish",
            str(refused.value),
        ), str(refused.value)
    finally:
        kill(holder)


@pytest.mark.parametrize("orchestrator", ["elt", "prefect"])
def test_a_killed_holder_frees_the_pipeline_at_once_and_its_run_is_closed_failed(env, orchestrator):
    holder, dead_run = hold("tiny", orchestrator)
    kill(holder)
    result = _run("tiny")  # no wait: PostgreSQL dropped the dead session's lock
    assert result.status == "succeeded", result.error
    status, error = _run_row(env, dead_run)
    assert status == "failed"
    assert re.fullmatch(
        rf"process died: the {orchestrator} process \S+:{holder.pid} is gone", error
    )
    titles = _events(env)
    assert sum(dead_run.split("-")[0] in t and "failed" in t for t in titles) == 1, titles


def test_an_airflow_run_between_tasks_keeps_the_pipeline_until_its_lease_expires(env, monkeypatch):
    from elt.config import load
    from elt.lease import PipelineBusyError
    from elt.lifecycle import Run

    monkeypatch.setattr(lease, "TASK_GAP_TTL_S", 3.0)
    monkeypatch.setattr(lease, "LEASE_TTL_S", 3.0)
    config = load()
    run = Run.create(
        config,
        config.pipeline("tiny"),
        "tiny-20260101T000000-aaaaaaaaaaaa",
        env.warehouse_url,
        orchestrator="airflow",
    )
    run.open()
    run.detach()  # the task ended; the DAG run goes on with its next task
    with pytest.raises(PipelineBusyError, match="by airflow"):
        _run("tiny")
    time.sleep(4)  # no task renewed the lease: the DAG run is gone (scheduler lost, …)
    result = _run("tiny")
    assert result.status == "succeeded"
    status, error = _run_row(env, run.run_id)
    assert status == "failed" and error.startswith("process died: no heartbeat since ")


def _cli(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "elt.cli", *args],
        cwd=paths.project_root(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,
    )


def test_elt_status_closes_and_reports_a_run_whose_process_died(env):
    holder, dead_run = hold("tiny", "elt")
    kill(holder)
    status = _cli("status")
    output = status.communicate(timeout=120)[0]
    assert status.returncode == 0, output
    assert f"closed abandoned run {dead_run} (tiny, by elt): process died" in output
    assert "no pipeline is running" in output
    assert _run_row(env, dead_run)[0] == "failed"
    assert len(_events(env)) == 1  # one alert for the dead run, not one per look
    again = _cli("status")
    assert "closed abandoned run" not in again.communicate(timeout=120)[0]
    assert _events(env) == []


def test_sigterm_stops_a_run_recorded_failed_alerted_and_the_pipeline_freed(env):
    process = _cli(
        "run", "tiny", env={**os.environ, "ELT_FAILPOINTS": '{"dbt_build": {"sleep_s": 120}}'}
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # bounded: until dbt_build has started
        rows = query(
            env.warehouse_url,
            "select count(*) from elt_meta.steps s join"
            " elt_meta.runs r using (run_id) where r.status = 'running'"
            " and s.step_id = 'ingest_landing'",
        )
        if rows[0][0]:
            break
        time.sleep(0.5)
    time.sleep(1)
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=120)[0]
    assert process.returncode != 0
    run_id = query(
        env.warehouse_url,
        "select run_id from elt_meta.runs where pipeline = 'tiny' order by started_at desc limit 1",
    )[0][0]
    status, error = _run_row(env, run_id)
    assert status == "failed" and "stopped by signal SIGTERM" in error, (error, output)
    assert any("tiny: failed" in t for t in _events(env))
    assert lease.current(env.warehouse_url, "tiny").run_id == ""


def test_with_upstream_runs_the_pipelines_it_depends_on_first(env):
    process = _cli("run", "tiny_after", "--with-upstream")
    output = process.communicate(timeout=600)[0]
    assert process.returncode == 0, output
    order = query(
        env.warehouse_url,
        "select pipeline, status from elt_meta.runs"
        " where pipeline in ('tiny', 'tiny_after') order by started_at desc limit 2",
    )
    assert order == [("tiny_after", "succeeded"), ("tiny", "succeeded")]
