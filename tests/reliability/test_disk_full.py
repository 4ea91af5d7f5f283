"""No space left on device: dlt's working folder full during an ingest, the lake folder full
during an export. Each fails with a clear error, leaves nothing half written behind (no
partial raw table, no partial Parquet file), and the rerun after freeing the space is exact."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.helpers.full_disk import small_filesystem
from tests.helpers.process_env import run_captured
from tests.helpers.warehouse import rows
from tests.reliability.test_database_restarts import (
    SOURCE_URL_VAR,
    assert_exact_copy,
    fill_source,
    ingest_command,
)

pytestmark = pytest.mark.integration

EXPORT_SCHEMA = "diskfull_published"
EXPORT_ROWS = 300_000
RUN_DATE = "2026-03-04"


def _raw_tables(url: str, dataset: str) -> list[tuple]:
    return rows(
        url,
        "select table_name from information_schema.tables where table_schema = %s"
        " and table_name not like '\\_dlt%%' order by 1",
        (dataset,),
    )


def test_full_dlt_working_folder_fails_clearly_loads_nothing_then_rerun_is_exact(pg, tmp_path):
    rows(pg.url(), "drop schema if exists raw_diskfull, raw_diskfull_staging cascade")
    source_url = pg.create_database("diskfull_source")
    fill_source(source_url)
    with small_filesystem(tmp_path / "dlt", size_mb=64) as disk:
        env = {
            **os.environ,
            SOURCE_URL_VAR: source_url,
            "ELT_CONFIG": str(tmp_path / "pipelines.yml"),
            "DLT_DATA_DIR": str(disk.path),
        }
        command = ingest_command(tmp_path, "diskfull")
        disk.fill(leave_kb=512)

        full = run_captured(command, env, tmp_path)

        assert full.returncode != 0, full.stdout
        # (dlt itself logs a warning with a traceback: it cannot write its trace file either)
        assert (
            "error: IngestError: ingest of source 'diskfull' failed during extract:"
            " OSError: [Errno 28] No space left on device"
        ) in full.stdout, full.stdout
        assert _raw_tables(pg.url(), "raw_diskfull") == []  # nothing loaded, not even a part

        disk.free()
        rerun = run_captured(command, env, tmp_path)

    assert rerun.returncode == 0, rerun.stdout
    assert_exact_copy(source_url, pg.url(), "raw_diskfull")


@pytest.fixture
def published_orders(pg) -> str:
    """A published schema of its own with one model, ``orders``; returns the schema."""
    rows(
        pg.url(),
        f"drop schema if exists {EXPORT_SCHEMA} cascade; create schema {EXPORT_SCHEMA};"
        f" create table {EXPORT_SCHEMA}.orders as select g as id, repeat('y', 30) || g as note,"
        f" (g * 0.01)::numeric(12, 2) as amount from generate_series(1, {EXPORT_ROWS}) g",
    )
    yield EXPORT_SCHEMA
    rows(pg.url(), f"drop schema if exists {EXPORT_SCHEMA} cascade")


def _partition_files(lake: Path) -> list[str]:
    return sorted(path.name for path in (lake / "orders" / f"run_date={RUN_DATE}").iterdir())


def test_export_to_a_full_lake_keeps_the_previous_partition_then_rerun_replaces_it(
    published_orders, tmp_path
):
    with small_filesystem(tmp_path / "lake", size_mb=64) as disk:
        env = {**os.environ, "ELT_PUBLISHED_SCHEMA": published_orders}
        command = [sys.executable, "-m", "elt.cli", "export", "--to", str(disk.path)]
        command += ["--model", "orders", "--run-date", RUN_DATE]
        first = run_captured(command, env, tmp_path)
        assert first.returncode == 0, first.stdout
        (previous,) = _partition_files(disk.path)
        previous_bytes = (disk.path / "orders" / f"run_date={RUN_DATE}" / previous).read_bytes()
        disk.fill(leave_kb=256)

        full = run_captured(command, env, tmp_path)

        assert full.returncode != 0, full.stdout
        assert f"export of {published_orders}.orders" in full.stdout, full.stdout
        assert "No space left on device" in full.stdout, full.stdout
        # the previous file, intact; no partial file, no leftover temporary file
        assert _partition_files(disk.path) == [previous]
        partition = disk.path / "orders" / f"run_date={RUN_DATE}"
        assert (partition / previous).read_bytes() == previous_bytes

        disk.free()
        rerun = run_captured(command, env, tmp_path)
        assert rerun.returncode == 0, rerun.stdout
        (current,) = _partition_files(disk.path)
        assert current != previous
        table = pq.read_table(partition / current)
        assert table.num_rows == EXPORT_ROWS
        assert sorted(table.column("id").to_pylist()) == list(range(1, EXPORT_ROWS + 1))
