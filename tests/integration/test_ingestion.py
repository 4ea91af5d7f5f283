"""Real dlt runs: a PostgreSQL source, a REST API on 127.0.0.1 and CSV files → the warehouse."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import dlt
import psycopg2
import pytest

from elt.config import FilesystemSource, RestApiSource, SqlDatabaseSource
from ingestion.fast_path import WRITER_SETTINGS
from ingestion.runner import ARROW_NORMALIZER, IngestError, ingest, pipeline_name, pipelines_dir
from ingestion.sources import build_source
from ingestion.warehouse_destination import close_shared_databases, shared_connection
from tests.helpers.api_sources import tweets_api_source

pytestmark = pytest.mark.integration

SOURCE_DB = "ingest_test_source"
WAREHOUSE_DB = "ingest_test_warehouse"
API_TOKEN = "test-token-4f9a2c7e1b"
SHOP_PASSWORD = "shop-pw-8d1e5c2a9f"


# -- helpers ------------------------------------------------------------------------------


def query(url: str, sql: str) -> list[tuple]:
    """Rows of ``sql`` on the database at ``url``."""
    with psycopg2.connect(url, connect_timeout=5) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall() if cur.description else []


def execute(url: str, sql: str) -> None:
    """Run ``sql`` (several statements allowed) and commit."""
    conn = psycopg2.connect(url, connect_timeout=5)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def columns(url: str, schema: str, table: str) -> list[str]:
    """Column names of ``schema.table``."""
    return [
        name
        for (name,) in query(
            url,
            "select column_name from information_schema.columns"
            f" where table_schema = '{schema}' and table_name = '{table}'",
        )
    ]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def dlt_home(tmp_path, monkeypatch) -> Path:
    """Pipeline working folders of this test only."""
    home = tmp_path / "dlt"
    monkeypatch.setenv("DLT_DATA_DIR", str(home))
    return home


@pytest.fixture(scope="module")
def warehouse_url(pg) -> str:
    """An empty warehouse database for this module; each test loads its own source name,
    so each test has its own dataset (raw_<source>)."""
    return pg.create_database(WAREHOUSE_DB)


@pytest.fixture(scope="module")
def source_db(pg) -> str:
    """The source database with a login role ``shop_reader``; returns the admin URL."""
    admin_url = pg.create_database(SOURCE_DB)
    execute(
        admin_url,
        f"""
        do $$ begin
          if not exists (select from pg_roles where rolname = 'shop_reader') then
            create role shop_reader login;
          end if;
        end $$;
        alter role shop_reader password '{SHOP_PASSWORD}';
        """,
    )
    return admin_url


@pytest.fixture
def shop(source_db, pg, monkeypatch) -> str:
    """Fresh source tables: orders (30 rows, cursor ordered_at two hours apart, all in the
    past) and customers (4 rows), read by ``shop_reader``, whose URL is in SHOP_TEST_URL."""
    execute(
        source_db,
        """
        drop view if exists big_orders;
        drop table if exists orders, customers;
        create table orders (
            id integer primary key, customer_id integer, status text,
            amount numeric(10, 2), ordered_at timestamptz not null
        );
        insert into orders
            select g, g % 4 + 1, 'placed', g * 1.25,
                   now() - interval '10 days' + g * interval '2 hours'
            from generate_series(1, 30) as g;
        create table customers (id integer primary key, name text);
        insert into customers values (1, 'Ann'), (2, 'Bo'), (3, 'Cy'), (4, 'Di');
        grant select on all tables in schema public to shop_reader;
        """,
    )
    url = f"postgresql://shop_reader:{SHOP_PASSWORD}@{pg.host}:{pg.port}/{SOURCE_DB}"
    monkeypatch.setenv("SHOP_TEST_URL", url)
    return source_db


def shop_source(name: str, **overrides: Any) -> SqlDatabaseSource:
    """The sql_database source over the ``shop`` fixture."""
    spec: dict[str, Any] = {
        "name": name,
        "type": "sql_database",
        "credentials": "env:SHOP_TEST_URL",
        "schema": "public",
        "chunk_size": 7,  # several Arrow batches per table
        "tables": {
            "orders": {"primary_key": "id", "cursor": "ordered_at", "lookback": "1h"},
            "customers": {"primary_key": "id"},
        },
    }
    spec.update(overrides)
    return SqlDatabaseSource.model_validate(spec)


# -- sql_database -------------------------------------------------------------------------


def test_sql_initial_load_then_incremental_merge(shop, warehouse_url, dlt_home):
    source = shop_source("sqlmerge")
    first = ingest(source, destination_url=warehouse_url)

    assert first.status == "succeeded"
    assert first.dataset == "raw_sqlmerge"
    assert first.rows == {"orders": 30, "customers": 4}
    assert len(first.load_ids) == 1
    assert first.file_formats == {"orders": "parquet", "customers": "parquet"}
    assert query(
        warehouse_url,
        "select count(*), count(distinct id), count(_dlt_load_id) from raw_sqlmerge.orders",
    ) == [(30, 30, 30)]
    # the fast path: Arrow rows carry the load id but no per-row _dlt_id (nor its index)
    assert "_dlt_id" not in columns(warehouse_url, "raw_sqlmerge", "orders")
    assert query(warehouse_url, "select distinct _dlt_load_id from raw_sqlmerge.customers") == [
        (first.load_ids[0],)
    ]

    execute(
        shop,
        """
        update orders set status = 'shipped', amount = amount + 100, ordered_at = now()
            where id in (3, 7, 11);
        insert into orders
            select g, 1, 'placed', g, now() from generate_series(31, 35) as g;
        """,
    )
    second = ingest(source, destination_url=warehouse_url)

    # 3 updated + 5 new + order 30, re-read because it is within the 1 h lookback
    assert second.rows["orders"] == 9
    assert query(warehouse_url, "select count(*), count(distinct id) from raw_sqlmerge.orders") == [
        (35, 35)
    ]
    assert query(
        warehouse_url,
        "select id, status, amount from raw_sqlmerge.orders where status = 'shipped' order by id",
    ) == [(3, "shipped", 103.75), (7, "shipped", 108.75), (11, "shipped", 113.75)]
    new_load = second.load_ids[0]
    assert query(
        warehouse_url,
        f"select count(*) from raw_sqlmerge.orders where _dlt_load_id = '{new_load}'",
    ) == [(9,)]


def test_tables_loaded_with_row_ids_keep_getting_them(shop, warehouse_url, dlt_home, monkeypatch):
    source = shop_source("sqlrowids")
    # as earlier versions loaded Arrow rows: with a NOT NULL, unique _dlt_id
    monkeypatch.setenv("NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_ID", "true")
    ingest(source, destination_url=warehouse_url)
    monkeypatch.delenv("NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_ID")
    execute(shop, "update orders set status = 'shipped', ordered_at = now() where id = 5")
    execute(
        shop, "insert into orders select g, 1, 'placed', g, now() from generate_series(31, 32) g"
    )
    messages: list[str] = []

    again = ingest(source, destination_url=warehouse_url, progress=messages.append)

    assert again.rows["orders"] == 4  # 5, 31, 32 and 30 (within the lookback)
    assert query(
        warehouse_url,
        "select count(*), count(distinct id), count(_dlt_id), count(distinct _dlt_id),"
        " count(*) filter (where status = 'shipped') from raw_sqlrowids.orders",
    ) == [(32, 32, 32, 32, 1)]
    assert any("keep their _dlt_id" in message for message in messages)
    # a full refresh drops the tables and loads them without it
    ingest(source, full_refresh=True, destination_url=warehouse_url)
    assert "_dlt_id" not in columns(warehouse_url, "raw_sqlrowids", "orders")
    assert query(warehouse_url, "select count(*) from raw_sqlrowids.orders") == [(32,)]


def test_big_tables_load_as_several_files_exactly(shop, warehouse_url, dlt_home, monkeypatch):
    monkeypatch.setitem(WRITER_SETTINGS, "data_writer.file_max_items", 10)
    source = shop_source("sqlfiles")

    first = ingest(source, destination_url=warehouse_url)
    execute(shop, "update orders set amount = 0, ordered_at = now() where id <= 12")
    second = ingest(source, destination_url=warehouse_url)

    assert first.jobs["orders"] >= 3  # 30 rows in files of at most 10
    assert second.rows["orders"] == 13  # 12 changed rows and order 30 (the lookback)
    assert query(
        warehouse_url,
        "select count(*), count(distinct id), count(*) filter (where amount = 0)"
        " from raw_sqlfiles.orders",
    ) == [(30, 30, 12)]


def test_a_table_filling_its_last_file_exactly_and_an_empty_table_load(
    shop, warehouse_url, dlt_home, monkeypatch
):
    # ConnectorX ends each stream with an empty batch: here it would be alone in a 4th file
    monkeypatch.setitem(WRITER_SETTINGS, "data_writer.file_max_items", 10)
    execute(shop, "drop table if exists returns; create table returns (id integer primary key)")
    execute(shop, "grant select on returns to shop_reader")
    source = shop_source(
        "sqlboundary",
        chunk_size=10,
        tables={"orders": {"primary_key": "id"}, "returns": {"primary_key": "id"}},
    )

    result = ingest(source, destination_url=warehouse_url)

    assert result.rows["orders"] == 30
    assert result.jobs["orders"] == 3
    assert query(
        warehouse_url, "select count(*), count(distinct id) from raw_sqlboundary.orders"
    ) == [(30, 30)]
    # an empty source table loads nothing and fails nothing (dlt creates it with its first rows)
    assert result.rows["returns"] == 0
    assert columns(warehouse_url, "raw_sqlboundary", "returns") == []


TYPED_TABLES = """
drop table if exists typed, loose;
create table typed (
    id integer primary key, small smallint, big bigint, ratio real, score double precision,
    flag boolean, name text, code varchar(8), grade char(3), born date, seen_at timestamp,
    paid_at timestamptz, opens time, blob bytea, ref uuid, price numeric(10, 2)
);
insert into typed
    select g, g, g * 10000000000, g / 3.0, g / 7.0, g % 2 = 0, 'name ' || g || ' ✓',
           'c' || g, 'g' || g % 10, date '2024-01-01' + g,
           timestamp '2024-01-01 08:00' + g * interval '90 minutes 1.5 seconds',
           timestamptz '2024-01-01 08:00+02' + g * interval '1 day 0.000123 seconds',
           time '08:00' + g * interval '1 minute', decode(md5(g::text), 'hex'),
           md5(g::text)::uuid, g * 1.25
    from generate_series(1, 25) as g;
insert into typed (id) values (26);
create table loose (id integer primary key, doc jsonb, amount numeric);
insert into loose select g, jsonb_build_object('n', g), g / 4.0 from generate_series(1, 5) as g;
grant select on typed, loose to shop_reader;
"""


def column_types(url: str, schema: str, table: str) -> list[tuple]:
    """(name, type, precision, scale, length) of each column of ``schema.table``."""
    return query(
        url,
        "select column_name, data_type, numeric_precision, numeric_scale,"
        " character_maximum_length from information_schema.columns"
        f" where table_schema = '{schema}' and table_name = '{table}' order by ordinal_position",
    )


def loaded_rows(url: str, schema: str, table: str) -> list[tuple]:
    """Every row of ``schema.table`` by id, without the load id."""
    names = [name for name, *_ in column_types(url, schema, table) if name != "_dlt_load_id"]
    return query(url, f"select {', '.join(names)} from {schema}.{table} order by id")


def test_adbc_reads_exactly_what_connectorx_reads(shop, warehouse_url, dlt_home, caplog):
    execute(shop, TYPED_TABLES)
    tables = {"typed": {"primary_key": "id"}, "loose": {"primary_key": "id"}}
    caplog.set_level(logging.INFO, logger="ingestion")

    connectorx = ingest(
        shop_source("sqlcx", tables=tables, backend="connectorx"), destination_url=warehouse_url
    )
    adbc = ingest(shop_source("sqladbc", tables=tables), destination_url=warehouse_url)

    assert adbc.rows == connectorx.rows == {"typed": 26, "loose": 5}
    for table in tables:
        assert column_types(warehouse_url, "raw_sqladbc", table) == column_types(
            warehouse_url, "raw_sqlcx", table
        )
        assert loaded_rows(warehouse_url, "raw_sqladbc", table) == loaded_rows(
            warehouse_url, "raw_sqlcx", table
        )
    # and both are the source's values (uuid arrives as text, real as double, as dlt types
    # them; dlt adds the columns it could not type from reflection last)
    names = [n for n, *_ in column_types(warehouse_url, "raw_sqladbc", "typed")]
    casts = {"ref": "ref::text", "ratio": "ratio::float8"}
    select = ", ".join(casts.get(n, n) for n in names if n != "_dlt_load_id")
    assert loaded_rows(warehouse_url, "raw_sqladbc", "typed") == query(
        shop, f"select {select} from typed order by id"
    )
    assert "reading typed through ADBC" in caplog.text
    assert (
        "reading loose through ConnectorX: column types ADBC does not read exactly:"
        " doc (JSONB), amount (NUMERIC)" in caplog.text
    )


def other_backends(url: str) -> int:
    """Connections to the database of ``url`` other than the one asking."""
    return query(
        url,
        "select count(*) from pg_stat_activity"
        " where datname = current_database() and pid <> pg_backend_pid()",
    )[0][0]


def test_load_jobs_share_one_adbc_database_and_close_it(shop, warehouse_url, dlt_home, monkeypatch):
    monkeypatch.setitem(WRITER_SETTINGS, "data_writer.file_max_items", 5)
    before = other_backends(warehouse_url)

    result = ingest(shop_source("sqlshared"), destination_url=warehouse_url)

    assert result.jobs["orders"] >= 5  # 30 rows in small files, one COPY each
    assert query(warehouse_url, "select count(*) from raw_sqlshared.orders") == [(30,)]
    assert other_backends(warehouse_url) == before  # nothing left open by the ingest


def test_tables_and_views_of_a_source_load_on_shared_connections_all_closed_after(
    shop, warehouse_url, dlt_home
):
    execute(
        shop,
        """
        create or replace view big_orders as select id, amount from orders where amount > 30;
        grant select on big_orders to shop_reader;
        """,
    )
    tables = {
        "orders": {"primary_key": "id", "cursor": "ordered_at"},
        "customers": {"primary_key": "id"},
        "big_orders": {"primary_key": "id"},
    }
    before = other_backends(shop)

    result = ingest(shop_source("sqlviews", tables=tables), destination_url=warehouse_url)

    assert result.rows == {"orders": 30, "customers": 4, "big_orders": 6}
    assert query(warehouse_url, "select min(id), max(amount) from raw_sqlviews.big_orders") == [
        (25, 37.5)
    ]
    # the shared engine and ADBC database of the source are closed with the ingest
    assert other_backends(shop) == before


def test_a_missing_table_beside_existing_ones_is_named(shop, warehouse_url, dlt_home):
    tables = {"orders": {"primary_key": "id"}, "refunds": {"primary_key": "id"}}
    source = shop_source("sqlmissingtoo", tables=tables)

    with pytest.raises(IngestError) as failure:
        ingest(source, destination_url=warehouse_url)

    assert "'refunds'" in str(failure.value)
    assert "does not exist in the source database" in str(failure.value)


def test_a_shared_adbc_database_lives_until_closed(warehouse_url):
    before = other_backends(warehouse_url)
    first, second = shared_connection(warehouse_url), shared_connection(warehouse_url)
    try:
        assert other_backends(warehouse_url) == before + 3  # the template and two clones
        with first.cursor() as cur:
            cur.execute("select 1")
            assert cur.fetchone() == (1,)
    finally:
        first.close()
        second.close()
    assert other_backends(warehouse_url) == before + 1
    close_shared_databases()
    assert other_backends(warehouse_url) == before


def test_sql_full_refresh_reloads_everything(shop, warehouse_url, dlt_home):
    source = shop_source("sqlrefresh")
    ingest(source, destination_url=warehouse_url)
    execute(shop, "delete from orders where id > 20")

    again = ingest(source, full_refresh=True, destination_url=warehouse_url)

    assert again.rows == {"orders": 20, "customers": 4}
    assert query(
        warehouse_url,
        "select count(*), count(distinct _dlt_load_id), min(_dlt_load_id)"
        " from raw_sqlrefresh.orders",
    ) == [(20, 1, again.load_ids[0])]


def test_sql_rerun_after_crash_finishes_the_pending_load(shop, warehouse_url, dlt_home):
    source = shop_source("sqlcrash")
    ingest(source, destination_url=warehouse_url)
    execute(
        shop, "insert into orders select g, 2, 'placed', g, now() from generate_series(31, 33) g"
    )
    # a run that died after extract and normalize, before load
    pipeline = dlt.pipeline(
        pipeline_name(source),
        pipelines_dir=str(pipelines_dir()),
        destination=dlt.destinations.postgres(credentials=warehouse_url),
        dataset_name=source.dataset,
    )
    with dlt.config.values(ARROW_NORMALIZER):
        pipeline.extract(build_source(source).source, loader_file_format="parquet")
        pipeline.normalize()
    assert pipeline.has_pending_data
    execute(
        shop, "insert into orders select g, 2, 'placed', g, now() from generate_series(34, 35) g"
    )

    messages: list[str] = []
    result = ingest(source, destination_url=warehouse_url, progress=messages.append)

    assert any("interrupted run" in message for message in messages)
    assert len(result.load_ids) == 2  # the finished package, then this run's own
    # rows are reported for the finished package too: 4 customers in it, 4 in this run's own
    assert result.rows["customers"] == 8
    assert result.rows["orders"] >= 5
    assert query(warehouse_url, "select count(*), count(distinct id) from raw_sqlcrash.orders") == [
        (35, 35)
    ]
    assert query(warehouse_url, "select count(*) from raw_sqlcrash.customers") == [(4,)]
    # this run continued from the finished package's cursor: the new rows and the lookback
    last_load = query(
        warehouse_url,
        "select id from raw_sqlcrash.orders"
        f" where _dlt_load_id = '{result.load_ids[-1]}' order by id",
    )
    assert last_load == [(31,), (32,), (33,), (34,), (35,)]


def test_sql_data_interval_loads_only_its_window(shop, warehouse_url, dlt_home):
    (start,), (end,) = query(shop, "select ordered_at from orders where id in (10, 15) order by id")

    windowed = ingest(
        shop_source("sqlwindow"), destination_url=warehouse_url, data_interval=(start, end)
    )

    # [start - 1 h lookback, end): orders 10..14 (order 9 is two hours before the start)
    assert windowed.rows["orders"] == 5
    assert query(warehouse_url, "select min(id), max(id) from raw_sqlwindow.orders") == [(10, 14)]
    # a window never moves the stored cursor: the next plain run still loads everything
    assert ingest(shop_source("sqlwindow"), destination_url=warehouse_url).rows["orders"] == 30


def test_sql_contract_freeze_names_table_and_column(shop, warehouse_url, dlt_home):
    source = shop_source("sqlfreeze", contract="freeze")
    ingest(source, destination_url=warehouse_url)
    execute(
        shop,
        """
        alter table orders add column coupon text;
        insert into orders values (31, 1, 'placed', 5, now(), 'SPRING24');
        """,
    )

    with pytest.raises(IngestError) as failure:
        ingest(source, destination_url=warehouse_url)

    message = str(failure.value)
    assert "source 'sqlfreeze'" in message
    assert "'orders'" in message
    assert "'coupon'" in message
    assert "contract mode 'freeze'" in message
    assert failure.value.result.status == "failed"
    assert query(warehouse_url, "select count(*) from raw_sqlfreeze.orders") == [(30,)]


def test_sql_unreachable_source_is_a_clear_error(warehouse_url, dlt_home, monkeypatch):
    url = f"postgresql://shop_reader:{SHOP_PASSWORD}@127.0.0.1:{free_port()}/{SOURCE_DB}"
    monkeypatch.setenv("SHOP_TEST_URL", url)

    with pytest.raises(IngestError) as failure:
        ingest(shop_source("sqldown"), destination_url=warehouse_url)

    message = str(failure.value)
    assert "source 'sqldown'" in message
    assert "cannot connect to the source database" in message
    assert "SHOP_TEST_URL" in message
    assert SHOP_PASSWORD not in message


def test_sql_wrong_password_is_a_clear_error(shop, pg, warehouse_url, dlt_home, monkeypatch):
    wrong = "not-the-password-123"
    monkeypatch.setenv(
        "SHOP_TEST_URL", f"postgresql://shop_reader:{wrong}@{pg.host}:{pg.port}/{SOURCE_DB}"
    )

    with pytest.raises(IngestError) as failure:
        ingest(shop_source("sqlpw"), destination_url=warehouse_url)

    message = str(failure.value)
    assert "refused the login" in message
    assert "password authentication failed" in message
    assert wrong not in message
    assert SHOP_PASSWORD not in message


def test_sql_missing_table_is_named(shop, warehouse_url, dlt_home):
    source = shop_source("sqlmissing", tables={"refunds": {"primary_key": "id"}})

    with pytest.raises(IngestError) as failure:
        ingest(source, destination_url=warehouse_url)

    message = str(failure.value)
    assert "'refunds'" in message
    assert "does not exist in the source database" in message


# -- rest_api -----------------------------------------------------------------------------

TWEETS = [
    {"id": i, "user": f"u{i % 3}", "text": f"tweet {i}", "tweeted_at": f"2026-01-01T00:{i:02d}:00"}
    for i in range(1, 24)
]


class _TweetsHandler(BaseHTTPRequestHandler):
    """GET /tweets?page=N&page_size=M with a bearer token; pages numbered from 1."""

    server: _TweetsServer

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query_args = parse_qs(url.query)
        if self.headers.get("Authorization") != f"Bearer {API_TOKEN}":
            self._send(HTTPStatus.UNAUTHORIZED, {"error": "bad token"})
            return
        page = int(query_args.get("page", ["1"])[0])
        size = int(query_args.get("page_size", ["10"])[0])
        self.server.pages_served.append(page)
        tweets = self.server.tweets
        rows = tweets[(page - 1) * size : page * size]
        total_pages = -(-len(tweets) // size)
        self._send(HTTPStatus.OK, {"data": rows, "page": page, "total_pages": total_pages})

    def _send(self, status: HTTPStatus, body: dict) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


class _TweetsServer(ThreadingHTTPServer):
    daemon_threads = True
    pages_served: list[int]
    tweets: list[dict[str, Any]]


@pytest.fixture
def tweets_api(monkeypatch) -> Iterator[_TweetsServer]:
    """The tweets API on 127.0.0.1; its URL and token in the environment."""
    server = _TweetsServer(("127.0.0.1", 0), _TweetsHandler)
    server.pages_served = []
    server.tweets = [dict(tweet) for tweet in TWEETS]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("TWEETS_TEST_URL", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("TWEETS_TEST_TOKEN", API_TOKEN)
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def tweets_source(name: str, contract: str = "evolve") -> RestApiSource:
    return tweets_api_source(
        name,
        url_env="TWEETS_TEST_URL",
        token_env="TWEETS_TEST_TOKEN",
        page_size=10,
        contract=contract,
    )


def test_rest_api_loads_every_page_once(tweets_api, warehouse_url, dlt_home):
    result = ingest(tweets_source("restpages"), destination_url=warehouse_url)

    assert result.rows == {"tweets": 23}
    assert sorted(tweets_api.pages_served) == [1, 2, 3]
    assert query(
        warehouse_url,
        "select count(*), count(distinct id), count(_dlt_load_id) from raw_restpages.tweets",
    ) == [(23, 23, 23)]
    assert query(warehouse_url, "select text from raw_restpages.tweets where id = 17") == [
        ("tweet 17",)
    ]


def test_rest_api_wrong_token_is_a_clear_error(tweets_api, warehouse_url, dlt_home, monkeypatch):
    monkeypatch.setenv("TWEETS_TEST_TOKEN", "wrong-token-7c3e9a1f")

    with pytest.raises(IngestError) as failure:
        ingest(tweets_source("resttoken"), destination_url=warehouse_url)

    message = str(failure.value)
    assert "source 'resttoken'" in message
    assert "'tweets'" in message
    assert "401" in message
    assert "env:TWEETS_TEST_TOKEN" in message
    assert "wrong-token-7c3e9a1f" not in message
    assert API_TOKEN not in message


def test_rest_api_contract_names_table_column_and_value(tweets_api, warehouse_url, dlt_home):
    source = tweets_source("restfreeze", contract="freeze")
    assert ingest(source, destination_url=warehouse_url).rows == {"tweets": 23}
    tweets_api.tweets.append({**TWEETS[0], "id": 24, "lang": "en-GB"})

    with pytest.raises(IngestError) as failure:
        ingest(source, destination_url=warehouse_url)

    message = str(failure.value)
    assert "source 'restfreeze'" in message
    assert "table 'tweets'" in message
    assert "column 'lang'" in message
    assert "'en-GB'" in message
    assert query(warehouse_url, "select count(*) from raw_restfreeze.tweets") == [(23,)]

    # the failed run left its package behind: the next run drops it and loads the fixed data
    tweets_api.tweets[-1].pop("lang")
    messages: list[str] = []
    fixed = ingest(source, destination_url=warehouse_url, progress=messages.append)
    assert any("dropping it" in message for message in messages)
    assert fixed.rows == {"tweets": 24}
    assert query(warehouse_url, "select count(*) from raw_restfreeze.tweets") == [(24,)]


# -- filesystem ---------------------------------------------------------------------------


def write_file(path: Path, text: str, mtime: float) -> None:
    """Write a file with an explicit modification time (new files are found by mtime)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, (mtime, mtime))


def landing_source(folder: Path) -> FilesystemSource:
    return FilesystemSource.model_validate(
        {
            "name": "landingtest",
            "type": "filesystem",
            "bucket_url": str(folder),
            "files": {
                "supplies": {
                    "glob": "supplies/*.csv",
                    "format": "csv",
                    "primary_key": ["id", "sku"],
                },
                "events": {"glob": "events/*.jsonl", "format": "jsonl"},
            },
        }
    )


def test_csv_files_are_loaded_once(tmp_path, warehouse_url, dlt_home):
    folder = tmp_path / "landing"
    now = time.time()
    write_file(folder / "supplies" / "a.csv", "id,sku,cost\n1,A1,2.5\n2,A2,3\n3,A3,\n", now - 60)
    write_file(folder / "events" / "e.jsonl", '{"kind": "drop"}\n{"kind": "pick"}\n', now - 60)
    source = landing_source(folder)

    first = ingest(source, destination_url=warehouse_url)
    second = ingest(source, destination_url=warehouse_url)
    write_file(folder / "supplies" / "b.csv", "id,sku,cost\n4,B1,1\n5,B2,1.5\n", now)
    third = ingest(source, destination_url=warehouse_url)

    # each file set keeps its own cursor
    assert first.rows == {"supplies": 3, "events": 2}
    assert second.rows == {"supplies": 0, "events": 0}
    assert third.rows == {"supplies": 2, "events": 0}
    assert query(warehouse_url, "select count(*) from raw_landingtest.events") == [(2,)]
    assert query(
        warehouse_url,
        "select id, sku, cost, _dlt_load_id is not null from raw_landingtest.supplies order by id",
    ) == [
        (1, "A1", 2.5, True),
        (2, "A2", 3.0, True),
        (3, "A3", None, True),
        (4, "B1", 1.0, True),
        (5, "B2", 1.5, True),
    ]


def test_malformed_csv_row_names_the_file_and_line(tmp_path, warehouse_url, dlt_home):
    folder = tmp_path / "landing"
    write_file(
        folder / "supplies" / "broken.csv", "id,sku,cost\n1,A1,2\n2,A2,3,oops\n", time.time()
    )

    with pytest.raises(IngestError) as failure:
        ingest(landing_source(folder), destination_url=warehouse_url)

    message = str(failure.value)
    assert "source 'landingtest'" in message
    assert "'supplies'" in message
    assert "broken.csv" in message
    assert "line 3" in message


@pytest.fixture
def s3_endpoint(monkeypatch) -> Iterator[str]:
    """An S3 API on 127.0.0.1 (moto), with test credentials in the standard AWS variables."""
    import subprocess
    import sys

    port = free_port()
    moto = Path(sys.executable).with_name("moto_server")
    server = subprocess.Popen(
        [str(moto), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret-key")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        monkeypatch.setenv("LANDING_TEST_S3", f"http://127.0.0.1:{port}")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_s3_bucket_files_are_loaded_once(s3_endpoint, warehouse_url, dlt_home):
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    s3.create_bucket(Bucket="lake")
    s3.put_object(Bucket="lake", Key="landing/supplies/a.csv", Body=b"id,sku,cost\n1,A,1\n2,B,2\n")
    source = FilesystemSource.model_validate(
        {
            "name": "s3landing",
            "type": "filesystem",
            "bucket_url": "s3://lake/landing",
            "endpoint_url": "env:LANDING_TEST_S3",
            "files": {"supplies": {"glob": "supplies/*.csv", "format": "csv", "primary_key": "id"}},
        }
    )

    first = ingest(source, destination_url=warehouse_url)
    second = ingest(source, destination_url=warehouse_url)
    time.sleep(1.1)  # S3 modification times have whole seconds
    s3.put_object(Bucket="lake", Key="landing/supplies/b.csv", Body=b"id,sku,cost\n3,C,1\n")
    third = ingest(source, destination_url=warehouse_url)

    assert (first.rows, second.rows, third.rows) == (
        {"supplies": 2},
        {"supplies": 0},
        {"supplies": 1},
    )
    assert query(warehouse_url, "select id, sku from raw_s3landing.supplies order by id") == [
        (1, "A"),
        (2, "B"),
        (3, "C"),
    ]
