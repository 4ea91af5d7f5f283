"""Failure modes that dlt users reported, reproduced: a row committed late with an older cursor
value, and a load whose dlt state write fails. Each ends with exactly the source's rows."""

from __future__ import annotations

import time
from typing import Any

import psycopg2
import pytest

from elt.config import SqlDatabaseSource
from ingestion.runner import IngestError, ingest
from tests.helpers.warehouse import rows

pytestmark = pytest.mark.integration

SOURCE_DB = "reported_modes_source"
WAREHOUSE_DB = "reported_modes_warehouse"


@pytest.fixture(scope="module")
def warehouse_url(pg) -> str:
    """An empty warehouse database for this module."""
    return pg.create_database(WAREHOUSE_DB)


@pytest.fixture
def source_url(pg, monkeypatch, tmp_path) -> str:
    """A fresh source database with 50 past orders; its URL is in REPORTED_SOURCE_URL."""
    url = pg.create_database(SOURCE_DB)
    rows(
        url,
        "create table orders (id int primary key, amount numeric(10, 2),"
        " ordered_at timestamptz not null);"
        " insert into orders select g, g, now() - interval '1 day' + g * interval '1 minute'"
        " from generate_series(1, 50) g",
    )
    monkeypatch.setenv("REPORTED_SOURCE_URL", url)
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    return url


def _source(name: str, **table: Any) -> SqlDatabaseSource:
    return SqlDatabaseSource.model_validate(
        {
            "name": name,
            "type": "sql_database",
            "credentials": "env:REPORTED_SOURCE_URL",
            "tables": {"orders": {"primary_key": "id", "cursor": "ordered_at", **table}},
        }
    )


def _ids(url: str, dataset: str) -> list[int]:
    return [row[0] for row in rows(url, f"select id from {dataset}.orders order by id")]


def _exact(source: str, warehouse: str, dataset: str) -> None:
    query = "select count(*), count(distinct id), sum(amount) from {}"
    assert rows(warehouse, query.format(f"{dataset}.orders")) == rows(
        source, query.format("orders")
    )


# -- late-committing rows and a timestamp cursor --------------------------------------------


def test_a_row_committed_late_is_caught_by_the_lookback(source_url, warehouse_url):
    """A transaction that started before others but commits after the ingest: its row has an
    older cursor value than rows already loaded. The lookback re-reads the window and merge
    keeps each row once; without a lookback the row is lost for good."""
    with_lookback, without = _source("late", lookback="10m"), _source("late_nolookback")
    late = psycopg2.connect(source_url)
    try:
        with late.cursor() as cur:  # now() is the transaction's start: the cursor value
            cur.execute("insert into orders values (100, 100, now())")
        time.sleep(0.05)
        rows(source_url, "insert into orders values (101, 101, clock_timestamp())")
        ingest(with_lookback, destination_url=warehouse_url)
        ingest(without, destination_url=warehouse_url)
        late.commit()
    finally:
        late.close()
    assert 100 not in _ids(warehouse_url, "raw_late")  # not committed at the first ingest

    ingest(with_lookback, destination_url=warehouse_url)
    ingest(without, destination_url=warehouse_url)

    _exact(source_url, warehouse_url, "raw_late")
    assert 100 in _ids(warehouse_url, "raw_late")
    # the failure mode itself: a plain cursor never reads the late row
    assert 100 not in _ids(warehouse_url, "raw_late_nolookback")
    assert len(_ids(warehouse_url, "raw_late_nolookback")) == 51


# -- a failed dlt state write, then a retry ---------------------------------------------------


def _fail_state_writes(url: str, dataset: str, times: int) -> None:
    """Make the next ``times`` inserts into the dataset's ``_dlt_pipeline_state`` fail (a
    sequence counts attempts: it is not rolled back with the failed insert)."""
    rows(
        url,
        f"create sequence if not exists {dataset}.state_write_attempts;"
        f" create or replace function {dataset}.fail_state_write() returns trigger"
        # security definer: the loader role that inserts may not use this test's sequence
        f" language plpgsql security definer as $$ begin"
        f" if nextval('{dataset}.state_write_attempts') <= {times} then"
        f" raise exception 'injected fault: the state write failed'; end if;"
        f" return new; end $$;"
        f" create or replace trigger fail_state_write before insert"
        f" on {dataset}._dlt_pipeline_state"
        f" for each row execute function {dataset}.fail_state_write()",
    )


@pytest.mark.parametrize("disposition", ["merge", "append"])
def test_a_failed_state_write_then_retry_adds_no_duplicate(source_url, warehouse_url, disposition):
    """dlt writes its pipeline state (the cursor) in the load package, next to the data. When
    that write fails after the data went in, a retry must not extract and load the same rows
    again: with append that is a duplicate of every row."""
    name = f"state_{disposition}"
    source = _source(name, write_disposition=disposition)
    ingest(source, destination_url=warehouse_url)
    rows(
        source_url,
        "insert into orders select g, g, now() - interval '1 hour' + g * interval '1 second'"
        " from generate_series(51, 60) g",
    )
    _fail_state_writes(warehouse_url, f"raw_{name}", times=100)

    with pytest.raises(IngestError) as failure:
        ingest(source, destination_url=warehouse_url)
    assert "source '" + name + "'" in str(failure.value)
    assert "_dlt_pipeline_state" in str(failure.value)
    assert "the state write failed" in str(failure.value)
    # the data went in; the cursor that says so did not
    assert rows(warehouse_url, f"select count(*) from raw_{name}.orders") == [(60,)]
    rows(warehouse_url, f"drop trigger fail_state_write on raw_{name}._dlt_pipeline_state")

    retry = ingest(source, destination_url=warehouse_url)

    _exact(source_url, warehouse_url, f"raw_{name}")
    # the retry finished the failed package (the rows' own load id) instead of extracting again
    assert rows(
        warehouse_url, f"select distinct _dlt_load_id from raw_{name}.orders where id > 50"
    ) == [(load_id,) for load_id in retry.load_ids]
    again = ingest(source, destination_url=warehouse_url)
    assert again.rows == {"orders": 0}
    _exact(source_url, warehouse_url, f"raw_{name}")


# -- a dbt node skipped by the orchestrator ---------------------------------------------------


def test_a_skipped_dbt_node_closes_the_gate(pg):
    """prefect-dbt once reported nodes that dbt skipped as successful task runs, so whatever
    came next ran as if they had been built. Our gate reads dbt's own status per node: one
    skipped node, everything else successful, and nothing is published."""
    from elt import runs
    from elt.config import load
    from elt.spec import plan
    from elt.steps import RunResult, StepError, StepRunner

    url = pg.create_database("reported_modes_gate")
    runs.migrate(url)
    config = load()
    pipeline = next(iter(config.pipelines))
    run_id = runs.new_run_id(pipeline)
    runs.open_run(url, run_id, pipeline, "prefect", reopen=False)
    runs.record_dbt_results(
        url,
        run_id,
        [
            runs.DbtResultRecord("model.elt.stg_shop__orders", "model", "success", 0.1),
            runs.DbtResultRecord("test.elt.not_null_orders_id.1a2b", "test", "pass", 0.1),
            runs.DbtResultRecord("model.elt.orders", "model", "skipped", 0.0),
        ],
    )
    runner = StepRunner(config, config.pipelines[pipeline], RunResult(run_id, pipeline), url)
    (gate,) = plan(config, pipeline).of_kind("quality")

    with pytest.raises(StepError) as closed:
        runner.run(gate)

    assert "1 dbt node(s) failed or were skipped (orders: skipped)" in str(closed.value)
    assert "nothing was published" in str(closed.value)
