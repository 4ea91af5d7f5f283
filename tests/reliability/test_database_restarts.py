"""A database restarted in the middle of an ingest: the source while dlt extracts from it, the
warehouse while dlt loads into it. The ingest fails with a clear error (or recovers), and the
rerun holds exactly the source's rows, each once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import pytest

from tests.helpers.pg_instance import PgInstance, server_home
from tests.helpers.process_env import run_captured
from tests.helpers.warehouse import rows

pytestmark = pytest.mark.integration

SOURCE_ROWS = 250_123  # a last, partial file of rows (test_kill.py loads a round 600,000)
CHUNK_ROWS = 20_000
FAULT_DEADLINE_S = 120
SOURCE_URL_VAR = "RESTART_SOURCE_URL"

CONFIG = """\
version: 1
sources:
  {name}:
    type: sql_database
    credentials: env:RESTART_SOURCE_URL
    schema: public
    chunk_size: {chunk}
    tables:
      orders: {{primary_key: id, cursor: ordered_at, lookback: 1h}}
      customers: {{primary_key: id}}
pipelines:
  restart_test:
    sources: [{name}]
"""
CHECKSUM = "select count(*), count(distinct id), sum(amount), sum(hashtext(note)) from {table}"


def fill_source(url: str, count: int = SOURCE_ROWS) -> None:
    """Orders (``count`` rows, a cursor in the past) and 5,000 customers."""
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            "drop table if exists orders, customers;"
            " create table orders (id bigint primary key, customer_id int, note text,"
            " amount numeric(12, 2), ordered_at timestamptz not null);"
            " insert into orders select g, g % 5000, repeat('x', 40) || g, g * 0.01,"
            " now() - interval '30 days' + g * interval '1 second'"
            f" from generate_series(1, {count}) g;"
            " create table customers (id int primary key, name text);"
            " insert into customers select g, 'c' || g from generate_series(1, 5000) g"
        )


def ingest_command(tmp_path: Path, name: str) -> list[str]:
    """`elt ingest <name>` with a pipelines.yml of one sql_database source in ``tmp_path``."""
    config = tmp_path / "pipelines.yml"
    config.write_text(CONFIG.format(name=name, chunk=CHUNK_ROWS))
    return [sys.executable, "-m", "elt.cli", "ingest", name]


def run_until(
    command: list[str], env: dict[str, str], cwd: Path, ready: Callable[[], bool]
) -> subprocess.Popen:
    """Start ``command`` and return once ``ready()`` holds while it still runs."""
    process = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.monotonic() + FAULT_DEADLINE_S
    while not ready():
        assert process.poll() is None, "the ingest finished before the fault: " + (
            process.stdout.read() if process.stdout else ""
        )
        assert time.monotonic() < deadline, "the ingest did not reach the fault point in time"
        time.sleep(0.05)
    return process


def _reading_orders(source_url: str) -> Callable[[], bool]:
    def ready() -> bool:
        found = rows(
            source_url,
            "select count(*) from pg_stat_activity where state = 'active'"
            " and query ilike '%%from%%orders%%' and pid <> pg_backend_pid()",
        )
        return found[0][0] > 0

    return ready


def assert_exact_copy(source_url: str, warehouse_url: str, dataset: str) -> None:
    """The raw tables hold the source's rows, each once (count, keys, sums, text checksum)."""
    assert rows(warehouse_url, CHECKSUM.format(table=f"{dataset}.orders")) == rows(
        source_url, CHECKSUM.format(table="orders")
    )
    assert rows(warehouse_url, f"select count(*), count(distinct id) from {dataset}.customers") == [
        (5000, 5000)
    ]


@dataclass
class FaultOutcome:
    """The ingest hit by the fault, its rerun, and where to compare."""

    faulted: subprocess.CompletedProcess
    rerun: subprocess.CompletedProcess
    source_url: str
    warehouse_url: str
    secret: str


def _restart_during(
    command: list[str], env: dict[str, str], cwd: Path, ready: Callable[[], bool], server
) -> subprocess.CompletedProcess:
    victim = run_until(command, env, cwd, ready)
    server.restart()
    output, _ = victim.communicate(timeout=300)
    return subprocess.CompletedProcess(command, victim.returncode, output, "")


@pytest.fixture(scope="module")
def source_restarted(pg, tmp_path_factory) -> Iterator[FaultOutcome]:
    """`elt ingest` of a source on its own server, restarted while its orders are read."""
    from tests.helpers.warehouse import reset_warehouse

    reset_warehouse(pg.url())
    work = tmp_path_factory.mktemp("source-restart")
    server = PgInstance(server_home("restart-source"))
    source_url = server.start()
    try:
        fill_source(source_url)
        env = {**os.environ, SOURCE_URL_VAR: source_url, "ELT_CONFIG": str(work / "pipelines.yml")}
        command = ingest_command(work, "restartsrc")
        faulted = _restart_during(command, env, work, _reading_orders(source_url), server)
        rerun = run_captured(command, env, work)
        password = psycopg2.extensions.parse_dsn(source_url)["password"]
        yield FaultOutcome(faulted, rerun, source_url, pg.url(), password)
    finally:
        server.destroy()


def test_source_restarted_mid_extract_then_rerun_is_exact(source_restarted):
    outcome = source_restarted
    assert outcome.faulted.returncode != 0, "the restart did not interrupt the extract"
    assert outcome.secret not in outcome.faulted.stdout
    assert outcome.rerun.returncode == 0, outcome.rerun.stdout
    assert_exact_copy(outcome.source_url, outcome.warehouse_url, "raw_restartsrc")


def test_source_restarted_mid_extract_is_a_clear_error(source_restarted):
    faulted = source_restarted.faulted
    assert faulted.returncode != 0, "the restart landed after the extract"
    assert "source 'restartsrc'" in faulted.stdout, faulted.stdout
    assert "cannot connect to the source database" in faulted.stdout, faulted.stdout
    assert "Traceback" not in faulted.stdout, faulted.stdout


def _loading(pipeline_dir: Path) -> Callable[[], bool]:
    """True once dlt is loading a package into the warehouse (a job has started or finished
    while the package is still being loaded)."""

    def ready() -> bool:
        normalized = pipeline_dir / "load" / "normalized"
        return any(normalized.glob("*/started_jobs/*")) or any(
            normalized.glob("*/completed_jobs/*")
        )

    return ready


@pytest.fixture(scope="module")
def warehouse_restarted(pg, tmp_path_factory) -> Iterator[FaultOutcome]:
    """`elt ingest` into a warehouse of its own, restarted while dlt loads into it."""
    source_url = pg.create_database("restart_warehouse_source")
    fill_source(source_url)
    work = tmp_path_factory.mktemp("warehouse-restart")
    server = PgInstance(server_home("restart-warehouse"))
    warehouse_url = server.start()
    try:
        env = {
            **server.env(),
            SOURCE_URL_VAR: source_url,
            "ELT_CONFIG": str(work / "pipelines.yml"),
        }
        command = ingest_command(work, "restartwh")
        pipeline_dir = server.home / "dlt" / "pipelines" / "elt_restartwh"
        faulted = _restart_during(command, env, work, _loading(pipeline_dir), server)
        rerun = run_captured(command, env, work)
        password = psycopg2.extensions.parse_dsn(warehouse_url)["password"]
        yield FaultOutcome(faulted, rerun, source_url, warehouse_url, password)
    finally:
        server.destroy()


def test_warehouse_restarted_mid_load_then_rerun_is_exact(warehouse_restarted):
    outcome = warehouse_restarted
    assert outcome.secret not in outcome.faulted.stdout + outcome.rerun.stdout
    # the restart hit the load: it failed, or dlt retried the jobs whose connection was cut
    hit = outcome.faulted.returncode != 0 or "retried in load" in outcome.faulted.stdout
    assert hit, outcome.faulted.stdout
    if outcome.faulted.returncode != 0:
        assert "source 'restartwh'" in outcome.faulted.stdout, outcome.faulted.stdout
        assert "warehouse" in outcome.faulted.stdout, outcome.faulted.stdout
    assert outcome.rerun.returncode == 0, outcome.rerun.stdout
    assert_exact_copy(outcome.source_url, outcome.warehouse_url, "raw_restartwh")
