"""Publish builds the marts' indexes after copying their rows: the published tables keep
every index, constraint and comment of the audited ones, readers get them, and a publish
killed while it builds an index leaves the old marts."""

from __future__ import annotations

import time

import psycopg2
import pytest
from psycopg2 import errors

from elt import roles
from elt.publish import publish
from elt.settings import Connection
from tests.helpers.publishing import start_publish
from tests.helpers.warehouse import rows

pytestmark = pytest.mark.integration

DATABASE = "publish_indexes_test"
ROWS = 4000
POLL_DEADLINE_S = 60

# Every kind of index and constraint `create table … (like … including all)` copies
MART = """
drop schema if exists audit cascade;
create schema audit;
create function audit.slow_key(v text) returns text language plpgsql immutable
    as $$ begin perform pg_sleep(%(sleep)s); return v; end $$;
create table audit.orders (
    order_id text primary key,
    customer_id text not null,
    total numeric(16, 2) not null default 0 check (total >= 0),
    status text,
    version int not null,
    constraint orders_customer_order_key unique (customer_id, order_id)
);
create index orders_open_idx on audit.orders (status) where status is not null;
create index on audit.orders (lower(customer_id));
comment on table audit.orders is 'Orders, one row per order.';
comment on column audit.orders.total is 'In dollars.';
insert into audit.orders
    select 'o' || g, 'c' || (g %% 97), g / 100.0, case when g %% 3 = 0 then 'open' end, %(v)s
    from generate_series(1, %(rows)s) as g;
"""
SLOW_INDEX = "create index orders_slow_idx on audit.orders (audit.slow_key(customer_id))"


def _build_audit(url: str, version: int, *, slow_index: bool = False) -> None:
    """Version ``version`` of the audited mart, built as the transformer (as dbt does); with
    ``slow_index`` an index whose build takes seconds."""
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        roles.set_local_role(cur, roles.TRANSFORMER)
        sleep = 0.0005 if slow_index else 0
        cur.execute(MART, {"v": version, "rows": ROWS, "sleep": sleep})
        if slow_index:
            cur.execute(SLOW_INDEX)


def _definition(url: str, schema: str) -> dict[str, list]:
    """Indexes, constraints and comments of ``schema.orders``, with the schema name
    taken out so the audited and the published table compare equal."""
    table = f"{schema}.orders"
    indexes = rows(
        url,
        "select indexname, replace(indexdef, %s, '') from pg_indexes"
        " where schemaname = %s and tablename = 'orders' order by indexname",
        (f" {schema}.", schema),
    )
    constraints = rows(
        url,
        "select conname, contype, pg_get_constraintdef(oid) from pg_constraint"
        " where conrelid = %s::regclass order by conname",
        (table,),
    )
    comments = rows(
        url,
        "select obj_description(%s::regclass, 'pg_class'), col_description(%s::regclass, 3)",
        (table, table),
    )
    return {"indexes": indexes, "constraints": constraints, "comments": comments}


@pytest.fixture
def database(pg) -> str:
    """An empty database with the roles' grants; returns its admin URL."""
    return pg.create_database(DATABASE)


def test_published_marts_keep_indexes_constraints_comments_and_the_reader_grant(database, pg):
    url = database
    _build_audit(url, 1)

    result = publish(url, audit="audit", published="analytics")

    assert result.tables == {"orders": ROWS}
    audited, published = _definition(url, "audit"), _definition(url, "analytics")
    assert published == audited
    assert [name for name, _ in published["indexes"]] == [
        "orders_customer_order_key",
        "orders_lower_idx",
        "orders_open_idx",
        "orders_pkey",
    ]
    assert published["comments"] == [("Orders, one row per order.", "In dollars.")]
    # the rebuilt constraints hold
    with pytest.raises(errors.UniqueViolation, match="orders_pkey"):
        rows(url, "insert into analytics.orders values ('o1', 'x', 1, null, 1)")
    with pytest.raises(errors.CheckViolation, match="orders_total_check"):
        rows(url, "insert into analytics.orders values ('new', 'x', -1, null, 1)")
    # the reader reads the published mart, and its indexes serve the reader's lookups
    admin = Connection(pg.host, pg.port, pg.user, pg.password, DATABASE)
    reader = roles.role_connection(roles.READER, admin)
    assert rows(reader.url(), "select count(*), min(version) from analytics.orders") == [(ROWS, 1)]
    plan = rows(
        reader.url(),
        "set enable_seqscan = off; explain select * from analytics.orders where order_id = 'o7'",
    )
    assert "orders_pkey" in " ".join(line for (line,) in plan)
    with pytest.raises(errors.InsufficientPrivilege, match="schema audit"):
        rows(reader.url(), "select * from audit.orders")


def _kill_index_build(url: str) -> list[tuple]:
    """Terminate the publish's backend while it builds an index of the new marts (bounded
    poll); returns what pg_terminate_backend said."""
    deadline = time.monotonic() + POLL_DEADLINE_S
    while time.monotonic() < deadline:
        killed = rows(
            url,
            "select pg_terminate_backend(pid) from pg_stat_activity"
            " where datname = current_database() and pid <> pg_backend_pid()"
            " and query like 'CREATE INDEX orders_slow_idx ON \"analytics\\_\\_next\".%'",
        )
        if killed:
            return killed
        time.sleep(0.01)
    return []


def test_a_publish_killed_while_building_indexes_leaves_the_old_marts(database):
    url = database
    _build_audit(url, 1)
    publish(url, audit="audit", published="analytics")
    before = _definition(url, "analytics")
    _build_audit(url, 2, slow_index=True)
    worker, failure = start_publish(url)
    killed = _kill_index_build(url)
    worker.join(timeout=60)

    assert killed == [(True,)], "the publish was not caught building its indexes"
    assert failure and isinstance(failure[0], psycopg2.Error)
    assert rows(url, "select count(*), min(version), max(version) from analytics.orders") == [
        (ROWS, 1, 1)
    ]
    assert _definition(url, "analytics") == before
    assert rows(url, "select 1 from pg_namespace where nspname = 'analytics__next'") == []

    publish(url, audit="audit", published="analytics")  # the rerun publishes version 2
    assert rows(url, "select count(*), min(version) from analytics.orders") == [(ROWS, 2)]
    assert _definition(url, "analytics") == _definition(url, "audit")


def test_a_partitioned_mart_is_published_as_a_table_with_its_indexes(database):
    url = database
    rows(
        url,
        "set role elt_transformer; drop schema if exists audit cascade; create schema audit;"
        " create table audit.events (id int, day date, kind text, primary key (id, day))"
        " partition by range (day);"
        " create table audit.events_2026 partition of audit.events"
        " for values from ('2026-01-01') to ('2027-01-01');"
        " create index events_kind_idx on audit.events (kind);"
        " insert into audit.events select g, date '2026-01-01' + g %% 300, 'k' || g %% 5"
        " from generate_series(1, 1000) as g",
        (),
    )

    assert publish(url, audit="audit", published="analytics").tables == {
        "events": 1000,
        "events_2026": 1000,
    }
    assert rows(
        url,
        "select indexname from pg_indexes where schemaname = 'analytics'"
        " and tablename = 'events' order by indexname",
    ) == [("events_kind_idx",), ("events_pkey",)]
