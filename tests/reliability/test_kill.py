"""The ingest process killed with SIGKILL in the middle of its load, then rerun: exactly the
source's rows, each once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest

from ingestion import runner
from tests.helpers.lifecycle import kill_when
from tests.helpers.warehouse import rows

pytestmark = pytest.mark.integration

SOURCE_DB = "kill_source"
SOURCE_ROWS = 600_000
KILL_DEADLINE_S = 120

CONFIG = """\
version: 1
sources:
  killshop:
    type: sql_database
    credentials: env:KILL_SOURCE_URL
    schema: public
    tables:
      orders: {primary_key: id, cursor: ordered_at, lookback: 1h}
      customers: {primary_key: id}
pipelines:
  kill_test:
    sources: [killshop]
"""


@pytest.fixture(scope="module")
def big_source(pg) -> str:
    """A source with enough rows that its load takes seconds; returns its URL."""
    url = pg.create_database(SOURCE_DB)
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            "create table orders (id bigint primary key, customer_id int, note text,"
            " amount numeric(12, 2), ordered_at timestamptz not null);"
            f" insert into orders select g, g % 5000, repeat('x', 40) || g, g * 0.01,"
            f" now() - interval '30 days' + g * interval '1 second'"
            f" from generate_series(1, {SOURCE_ROWS}) g;"
            " create table customers (id int primary key, name text);"
            " insert into customers select g, 'c' || g from generate_series(1, 5000) g"
        )
    return url


def _ingest_command(config: Path, source_url: str) -> tuple[list[str], dict[str, str]]:
    env = {**os.environ, "ELT_CONFIG": str(config), "KILL_SOURCE_URL": source_url}
    return [sys.executable, "-m", "elt.cli", "ingest", "killshop"], env


def _load_started(pipeline_dir: Path) -> bool:
    """True once dlt is loading a package into the warehouse (a job file has started)."""
    return any((pipeline_dir / "load" / "normalized").glob("*/started_jobs/*"))


def test_sigkill_mid_load_then_rerun_gives_exact_rows(pg, big_source, tmp_path):
    from tests.helpers.warehouse import reset_warehouse

    reset_warehouse(pg.url())
    config = tmp_path / "pipelines.yml"
    config.write_text(CONFIG)
    command, env = _ingest_command(config, big_source)
    pipeline_dir = runner.pipelines_dir() / "elt_killshop"  # where the child's env puts it

    victim = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path
    )
    kill_when(victim, lambda: _load_started(pipeline_dir), KILL_DEADLINE_S)
    assert list((pipeline_dir / "load" / "normalized").iterdir()), "no pending package left"

    rerun = subprocess.run(
        command, env={**env, "COLUMNS": "200"}, capture_output=True, text=True, timeout=300
    )
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    # the rows the finished package loaded are reported (they were 0 before)
    reported = next(line for line in rerun.stdout.splitlines() if "raw_killshop.orders" in line)
    assert int(reported.split("│")[2].strip().replace(",", "")) >= SOURCE_ROWS, reported

    url = pg.url()
    assert rows(
        url, "select count(*), count(distinct id), sum(amount) from raw_killshop.orders"
    ) == (rows(big_source, "select count(*), count(distinct id), sum(amount) from orders"))
    assert rows(url, "select count(*), count(distinct id) from raw_killshop.customers") == [
        (5000, 5000)
    ]
    # nothing left pending: a third run loads only the lookback window, no duplicates
    third = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert third.returncode == 0, third.stdout + third.stderr
    assert rows(url, "select count(*) - count(distinct id) from raw_killshop.orders") == [(0,)]
    assert rows(url, "select count(*) from raw_killshop.orders") == [(SOURCE_ROWS,)]
