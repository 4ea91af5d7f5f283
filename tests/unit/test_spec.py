"""The run plan built from pipelines.yml."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from elt.config import load
from elt.spec import plan

CONFIG = """
sources:
  db:
    type: sql_database
    credentials: env:DB_URL
    retries: {count: 5, delay: 10s}
    tables: {orders: {primary_key: id}}
  files:
    type: filesystem
    bucket_url: /tmp/landing
    files: {supplies: {glob: "*.csv", format: csv}}
pipelines:
  nightly:
    schedule: "0 2 * * *"
    retries: {count: 2, delay: 1m}
    sources: [db, files]
    export: {to: /tmp/lake, models: [orders]}
    limits: {max_task_duration: 20m}
  bare:
    sources: [files]
    publish: none
pools: {database: 4, file_io: 2, api: 1}
"""


def _config(tmp_path: Path):
    path = tmp_path / "pipelines.yml"
    path.write_text(CONFIG)
    return load(path)


def test_plan_orders_steps_and_carries_policies(tmp_path):
    the_plan = plan(_config(tmp_path), "nightly")
    ids = [step.id for step in the_plan.steps]
    assert ids == [
        "ingest_db",
        "ingest_files",
        "dbt_build",
        "quality_gate",
        "publish",
        "export",
        "notify",
    ]
    db = the_plan.step("ingest_db")
    assert (db.pool, db.retries, db.retry_delay) == ("database", 5, timedelta(seconds=10))
    files = the_plan.step("ingest_files")
    assert (files.pool, files.retries) == ("file_io", 2)
    assert the_plan.step("dbt_build").depends_on == ("ingest_db", "ingest_files")
    assert the_plan.step("quality_gate").retries == 0
    assert the_plan.step("publish").depends_on == ("quality_gate",)
    assert the_plan.step("notify").trigger == "all_done"
    assert all(step.timeout == timedelta(minutes=20) for step in the_plan.steps)


def test_plan_without_publish_or_export(tmp_path):
    the_plan = plan(_config(tmp_path), "bare")
    assert [step.kind for step in the_plan.steps] == ["ingest", "transform", "quality", "notify"]
    assert the_plan.of_kind("ingest")[0].source == "files"
