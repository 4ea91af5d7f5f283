"""Schema drift at a database source: a removed column becomes NULL-able with a warning (or
fails under freeze), a changed type fails naming source, table, column and both types."""

from __future__ import annotations

import os
import sys

import pytest

from elt import paths
from elt.config import SqlDatabaseSource
from ingestion.errors import IngestError
from ingestion.runner import ingest
from tests.helpers.process_env import run_captured
from tests.helpers.warehouse import rows

pytestmark = pytest.mark.integration

CONFIG = """\
version: 1
sources:
  drift:
    type: sql_database
    credentials: env:DRIFT_SOURCE_URL
    schema: public
    tables:
      gauges: {primary_key: id, cursor: updated_at, lookback: 1m}
pipelines:
  drift_test:
    sources: [drift]
"""


@pytest.fixture
def databases(pg, monkeypatch) -> tuple[str, str]:
    """(source URL, warehouse URL): ``gauges`` loaded once into ``raw_drift``."""
    source = pg.create_database("drift_source")
    rows(
        source,
        "create table gauges (id int primary key, reading bigint not null, label text not null,"
        " updated_at timestamptz not null);"
        " insert into gauges select g, g * 10, 'l' || g, now() - interval '1 day' + g * interval"
        " '1 minute' from generate_series(1, 20) g",
    )
    monkeypatch.setenv("DRIFT_SOURCE_URL", source)
    warehouse = pg.create_database("drift_warehouse")
    assert ingest(_source(), destination_url=warehouse).rows == {"gauges": 20}
    return source, warehouse


def _source(contract: str = "evolve") -> SqlDatabaseSource:
    spec = {"name": "drift", "type": "sql_database", "credentials": "env:DRIFT_SOURCE_URL"}
    tables = {"gauges": {"primary_key": "id", "cursor": "updated_at", "lookback": "1m"}}
    return SqlDatabaseSource.model_validate({**spec, "contract": contract, "tables": tables})


def test_a_removed_column_becomes_nullable_with_a_warning(databases, dlt_home):
    source, warehouse = databases
    # as an earlier version created raw columns: NOT NULL like the source's
    rows(warehouse, "alter table raw_drift.gauges alter column label set not null")
    rows(
        source,
        "alter table gauges drop column label;"
        " insert into gauges (id, reading, updated_at) values (21, 5, now())",
    )

    with pytest.raises(IngestError, match="column\\(s\\) label are gone at the source and the"):
        ingest(_source("freeze"), destination_url=warehouse)
    messages: list[str] = []
    result = ingest(_source(), destination_url=warehouse, progress=messages.append)

    assert result.rows["gauges"] >= 1
    # rows loaded from now on have no label: the new one and the one the lookback re-read
    assert rows(warehouse, "select count(*), count(label) from raw_drift.gauges") == [(21, 18)]
    assert rows(
        warehouse, "select label from raw_drift.gauges where id in (1, 21) order by id"
    ) == [
        ("l1",),
        (None,),
    ]
    assert (
        "warning: drift: column(s) label of table gauges are gone at the source; raw keeps"
        " them, NULL in rows loaded from now on" in messages
    )


def test_a_changed_type_fails_naming_source_table_column_and_types(databases, dlt_home, tmp_path):
    source, warehouse = databases
    rows(
        source,
        "alter table gauges alter column reading type text;"
        " insert into gauges values (21, 'n/a', 'x', now())",
    )
    config = tmp_path / "pipelines.yml"
    config.write_text(CONFIG)
    env = {
        **os.environ,
        "ELT_CONFIG": str(config),
        "ELT_WAREHOUSE_URL": warehouse,
        "COLUMNS": "500",
    }

    result = run_captured(
        [sys.executable, "-m", "elt.cli", "ingest", "drift"], env, paths.project_root()
    )

    assert result.returncode == 1
    errors = [line for line in result.stdout.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: IngestError: ingest of source 'drift' failed at table 'gauges': column 'reading'"
        " changed type at the source from bigint to text; raw_drift.gauges.reading is bigint."
        " Change it back at the source, or rebuild the raw table with the new type: elt ingest"
        " drift --full-refresh"
    ], result.stdout
    assert "warehouse" not in errors[0].lower().replace("raw_drift", "")
    assert "Traceback" not in result.stdout
    assert rows(warehouse, "select count(*) from raw_drift.gauges") == [(20,)]  # nothing loaded


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("price,qty\n1,2\n", "no primary key column(s) sku (header: price, qty)"),
        (
            "sku;price\nA;1\n",
            "no primary key column(s) sku (header: sku;price); the header was read as one"
            " column: is the file delimited by ';', tab or '|'?",
        ),
    ],
)
def test_a_csv_file_without_its_key_column_is_named(pg, dlt_home, tmp_path, content, expected):
    from elt.config import FilesystemSource

    warehouse = pg.create_database("drift_files")
    (tmp_path / "prices").mkdir()
    (tmp_path / "prices" / "day1.csv").write_text("sku,price\nA,1\n")
    source = FilesystemSource.model_validate(
        {
            "name": "driftfiles",
            "type": "filesystem",
            "bucket_url": tmp_path.as_uri(),
            "files": {"prices": {"glob": "prices/*.csv", "format": "csv", "primary_key": "sku"}},
        }
    )
    assert ingest(source, destination_url=warehouse).rows == {"prices": 1}
    bad = tmp_path / "prices" / "day2.csv"
    bad.write_text(content)

    with pytest.raises(IngestError) as failed:
        ingest(source, destination_url=warehouse)

    assert str(failed.value) == (
        "ingest of source 'driftfiles' failed at table/resource 'prices' during extract:"
        f" malformed file {bad.as_uri()}: {expected}. Fix or remove the file, then run again"
    )
    assert rows(warehouse, "select sku from raw_driftfiles.prices") == [("A",)]
