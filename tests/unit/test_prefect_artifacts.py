"""Run summaries and quality tables for Prefect artifacts, and elt run ids of flow runs."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from uuid import UUID

from elt import dbt, runs
from elt.steps import RunResult
from orchestration.prefect import artifacts
from orchestration.prefect.run import run_id_for

STARTED = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


def step(step_id: str, status: str = "succeeded", rows: int | None = None) -> runs.StepRecord:
    return runs.StepRecord(
        step_id=step_id,
        kind=step_id.split("_")[0],
        status=status,
        started_at=STARTED,
        finished_at=STARTED + timedelta(seconds=2.5),
        rows=rows,
        peak_rss_mb=312.4,
        cpu_s=1.25,
    )


def failed_result() -> RunResult:
    result = RunResult(run_id="daily-20261130T100000-abcdef012345", pipeline="daily")
    result.status = "failed"
    result.duration_s = 42.0
    result.loads = [runs.LoadRecord("shop", "orders", 534, "1.2", 1.0)]
    result.steps = [
        step("ingest_shop", rows=534),
        step("dbt_build", rows=7),
        step("quality_gate", "failed"),
    ]
    result.dbt = dbt.DbtOutcome(
        command="build",
        success=False,
        results=[
            runs.DbtResultRecord("model.elt.orders", "model", "success", 0.3),
            runs.DbtResultRecord("test.elt.not_null_orders_id.1a", "test", "pass", 0.1),
            runs.DbtResultRecord(
                "test.elt.order_total_matches.2b",
                "test",
                "fail",
                0.1,
                failures=3,
                message="\x1b[31mGot 3 results\x1b[0m, from postgresql://u:hunter2-x@h/db",
            ),
            runs.DbtResultRecord("unit_test.elt.orders.flags", "unit_test", "skipped", 0.0),
            runs.DbtResultRecord("test.elt.recency_orders.3c", "test", "warn", 0.1, failures=1),
        ],
    )
    result.error = "quality_gate: quality gate closed: 2 dbt node(s) failed or were skipped"
    return result


def test_summary_reports_outcome_rows_steps_and_failed_checks():
    text = artifacts.summary_markdown(failed_result())
    assert text.startswith("# daily: failed\n")
    assert "| run id | `daily-20261130T100000-abcdef012345` |" in text
    assert "| rows loaded | 534 |" in text
    assert "| models built | 1 |" in text
    assert "| tests passed | 1 |" in text
    assert "| failed or skipped checks | 2 |" in text
    assert "| published | nothing |" in text
    assert "| shop.orders | 534 |" in text
    assert "| quality_gate | failed | 2.5 | - | 312 | 1.2 |" in text
    assert "- test.elt.order_total_matches.2b: Got 3 results, from postgresql://u:***@h/db" in text
    assert "- unit_test.elt.orders.flags: skipped" in text
    assert "quality gate closed" in text
    assert "\x1b[" not in text
    assert "hunter2" not in text


def test_quality_rows_list_problems_first_without_colour_codes_or_secrets():
    rows = artifacts.quality_rows(failed_result())
    assert [(row["check"], row["status"]) for row in rows] == [
        ("2b", "fail"),
        ("flags", "skipped"),
        ("3c", "warn"),
        ("1a", "pass"),
    ]
    assert rows[0]["node"] == "test.elt.order_total_matches.2b"
    assert rows[0]["failures"] == 3
    assert rows[0]["message"] == "Got 3 results, from postgresql://u:***@h/db"
    assert all(row["type"] in ("test", "unit_test") for row in rows)


def test_quality_rows_are_empty_before_dbt_ran():
    assert artifacts.quality_rows(RunResult(run_id="x", pipeline="p")) == []


def test_artifact_keys_are_valid_prefect_keys():
    assert artifacts.artifact_key("jaffle_daily", "summary") == "jaffle-daily-summary"
    assert re.fullmatch(r"[a-z0-9-]+", artifacts.artifact_key("A.b_C", "quality"))


def test_run_id_is_sortable_and_the_same_for_every_retry_of_a_flow_run():
    flow_run_id = UUID("0192f5e4-1c2b-7d3e-8f40-a1b2c3d4e5f6")
    first = run_id_for("jaffle_daily", flow_run_id, STARTED)
    assert first == "jaffle_daily-20261130T100000-a1b2c3d4e5f6"
    assert run_id_for("jaffle_daily", str(flow_run_id), STARTED) == first
    other = run_id_for("jaffle_daily", UUID("0192f5e4-1c2b-7d3e-8f40-000000000001"), STARTED)
    assert other != first
