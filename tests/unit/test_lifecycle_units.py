"""The run lifecycle's pieces that need no warehouse: timeouts, failpoints, the plan's
pools and slots, depends_on order, and the Airflow factory's refusal of unknown steps."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from elt import failpoints
from elt.config import load
from elt.lifecycle import StepTimedOut, call_with_timeout
from elt.runner import upstream_pipelines
from elt.spec import Step, plan

CONFIG = """
sources:
  files:
    type: filesystem
    bucket_url: /tmp/landing
    pool: cpu
    pool_slots: 2
    files: {supplies: {glob: "*.csv", format: csv}}
pipelines:
  raw:
    sources: [files]
    pool: memory
    pool_slots: 2
  marts:
    sources: [files]
    depends_on: [raw]
  report:
    sources: [files]
    depends_on: [marts, raw]
pools: {cpu: 4, memory: 2}
"""


def _config(tmp_path: Path):
    path = tmp_path / "pipelines.yml"
    path.write_text(CONFIG)
    return load(path)


def test_a_step_past_its_timeout_is_stopped_with_that_reason():
    stopped_after = []

    def hang():
        started = time.monotonic()
        try:
            for _ in range(600):  # bounded: 60 s at most
                time.sleep(0.1)
        finally:
            stopped_after.append(time.monotonic() - started)
        return 1, {}

    with pytest.raises(StepTimedOut, match="timed out after 1 s"):
        call_with_timeout(hang, 1.0)
    assert stopped_after and stopped_after[0] < 10  # the step itself was stopped, not left


def test_a_step_within_its_timeout_returns_or_raises_as_itself():
    assert call_with_timeout(lambda: (3, {"ok": True}), 5.0) == (3, {"ok": True})
    assert call_with_timeout(lambda: (4, {}), None) == (4, {})

    def broken():
        raise ValueError("bad row 7")

    with pytest.raises(ValueError, match="bad row 7"):
        call_with_timeout(broken, 5.0)


def test_failpoints_fail_the_first_attempts_then_let_the_step_run(monkeypatch):
    failpoints.hit("ingest_x", 1)  # nothing configured: nothing happens
    monkeypatch.setenv(failpoints.ENV, '{"ingest_x": {"fail_attempts": 2}}')
    for attempt in (1, 2):
        with pytest.raises(failpoints.InjectedFault, match=f"attempt {attempt}"):
            failpoints.hit("ingest_x", attempt)
    failpoints.hit("ingest_x", 3)
    failpoints.hit("other_step", 1)


def test_pipeline_pool_and_slots_reach_its_own_steps_and_source_slots_its_ingests(tmp_path):
    the_plan = plan(_config(tmp_path), "raw")
    ingest = the_plan.step("ingest_files")
    assert (ingest.pool, ingest.pool_slots) == ("cpu", 2)
    for step_id in ("dbt_build", "quality_gate", "publish"):
        step = the_plan.step(step_id)
        assert (step.pool, step.pool_slots) == ("memory", 2), step_id
    marts = plan(_config(tmp_path), "marts")
    assert (marts.step("dbt_build").pool, marts.step("dbt_build").pool_slots) == ("database", 1)


def test_pool_slots_beyond_the_pool_size_are_refused(tmp_path):
    from elt.config import ConfigError

    path = tmp_path / "pipelines.yml"
    path.write_text(CONFIG.replace("pool_slots: 2\n    files", "pool_slots: 9\n    files"))
    with pytest.raises(ConfigError, match=r"pool_slots 9 is more than pool 'cpu' has \(4\)"):
        load(path)


def test_upstream_pipelines_come_first_each_once(tmp_path):
    config = _config(tmp_path)
    assert upstream_pipelines(config, "raw") == []
    assert upstream_pipelines(config, "marts") == ["raw"]
    assert upstream_pipelines(config, "report") == ["raw", "marts"]


def test_an_airflow_dag_refuses_a_step_kind_it_has_no_task_for(tmp_path):
    from orchestration.airflow.factory import PipelinesConfigError, _StepTasks

    pipe = _config(tmp_path).pipeline("raw")
    weird = Step(id="sing", kind="sing")  # type: ignore[arg-type]
    with pytest.raises(PipelinesConfigError, match="raw: no Airflow task for a 'sing' step"):
        _StepTasks(pipe).build(weird)
