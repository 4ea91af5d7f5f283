"""A quality-gate run (GX: context, suites, checkpoints, results, Data Docs) changes no
tracked file and leaves no untracked one in the checkout: the GX context is generated under
.elt/ and the hand-written suites are read from expectations/suites/."""

from __future__ import annotations

import subprocess
import uuid

import psycopg2
import pytest

from elt import paths, runs
from elt.config import ProjectConfig
from expectations import context as gx_context
from expectations.gate import run_quality

pytestmark = pytest.mark.integration

SCHEMA = f"gx_untouched_{uuid.uuid4().hex[:8]}"
PIPELINES = {
    "untouched": {
        "sources": [],
        "quality": {
            "rules": [{"type": "not_null", "table": "orders", "column": "order_id"}],
            "suites": ["orders"],  # expectations/suites/orders.json
        },
    }
}


def _git_status() -> str:
    return subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=paths.project_root(),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout


@pytest.fixture
def orders(pg):
    """A mart-shaped orders table in its own schema (as the audit schema would hold it)."""
    conn = psycopg2.connect(pg.url())
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                f"create schema {SCHEMA}; create table {SCHEMA}.orders (order_id text,"
                " location_id text, customer_id text, subtotal numeric(16, 2),"
                " tax_paid numeric(16, 2), order_total numeric(16, 2), ordered_at timestamptz,"
                " order_cost numeric(16, 2), customer_order_number int);"
                f" insert into {SCHEMA}.orders values ('o1', 'l1', 'c1', 10, 1, 11, now(), 5, 1)"
            )
    finally:
        conn.close()
    yield pg.url()
    conn = psycopg2.connect(pg.url())
    try:
        with conn, conn.cursor() as cur:
            cur.execute(f"drop schema {SCHEMA} cascade")
    finally:
        conn.close()


def test_a_gate_run_leaves_the_checkout_as_it_was(orders, monkeypatch):
    monkeypatch.delenv("ELT_GX_DIR", raising=False)
    monkeypatch.setenv("ELT_DBT_SCHEMA", SCHEMA)
    runs.migrate(orders)
    config = ProjectConfig.model_validate({"pipelines": PIPELINES})
    before = _git_status()

    for attempt in range(2):  # the first creates the context, the second reuses it
        outcome = run_quality(
            config, "untouched", run_id=f"untouched-{attempt}", url=orders, stage="audit"
        )
        assert {check.suite for check in outcome.checks} == {"untouched.orders", "orders"}
        assert all(check.success for check in outcome.checks), outcome.checks

    assert _git_status() == before
    context = gx_context.gx_dir()
    assert context.is_relative_to(paths.state_dir())
    assert (context / "expectations" / "orders.json").read_text() == (
        paths.expectations_dir() / "suites" / "orders.json"
    ).read_text()
