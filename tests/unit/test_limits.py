"""Unit tests of ``elt.limits``: the duration limits both orchestrators check after a run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from elt import limits
from elt.config import load
from elt.runs import StepRecord

CONFIG = """
version: 1
sources:
  shop: {type: sql_database, credentials: env:SHOP_DB_URL, tables: {orders: {primary_key: id}}}
pipelines:
  daily:
    sources: [shop]
    limits: {max_duration: 10m, max_task_duration: 2m}
"""


@pytest.fixture
def pipe(tmp_path: Path):
    path = tmp_path / "pipelines.yml"
    path.write_text(CONFIG)
    return load(path).pipeline("daily")


def step(step_id: str, seconds: float) -> StepRecord:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return StepRecord(step_id, "ingest", "succeeded", start, start + timedelta(seconds=seconds))


def test_breaches_name_the_run_or_step_with_observed_and_limit_values(pipe):
    found = limits.breaches(pipe, 700, [step("ingest_shop", 150), step("publish", 5)])
    assert found == [
        "run took 700 s, over max_duration 600 s",
        "ingest_shop took 150 s, over max_task_duration 120 s",
    ]
    assert limits.breaches(pipe, 60, [step("ingest_shop", 100)]) == []


def test_a_step_much_slower_than_its_history_breaches_but_noise_does_not(pipe):
    history = {"ingest_shop": [10.0, 12.0, 11.0, 9.0], "publish": [1.0, 1.0]}
    found = limits.breaches(pipe, 60, [step("ingest_shop", 40), step("publish", 9)], history)
    assert found == ["ingest_shop took 40 s, 3.8x its median of 10 s over the last 4 runs"]
    assert limits.breaches(pipe, 60, [step("ingest_shop", 19)], history) == []


def test_limit_report_is_its_own_event_and_lists_where_the_time_went():
    report = limits.LimitReport(
        pipeline="daily",
        run_id="r1",
        status="succeeded",
        duration_s=700,
        warnings=["run took 700 s, over max_duration 600 s"],
        step_durations=[("ingest_shop", 650.04), ("publish", 5.0)],
    )
    assert report.event == "limit_exceeded"
    assert report.title() == "[elt] daily: 1 duration limit(s) exceeded"
    body = report.body()
    assert "  run took 700 s, over max_duration 600 s" in body
    assert body.endswith("step durations:\n  ingest_shop: 650.0 s\n  publish: 5.0 s")
