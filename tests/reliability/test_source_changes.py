"""Changes at the source reach raw: late updates by the change timestamp, rows the source marks
deleted, rows deleted physically (key reconciliation, per run and daily)."""

from __future__ import annotations

import pytest

from elt.config import SqlDatabaseSource
from ingestion.runner import ingest
from tests.helpers.warehouse import rows

pytestmark = pytest.mark.integration

SOURCE_DB = "changes_source"
WAREHOUSE_DB = "changes_warehouse"


@pytest.fixture
def databases(pg, monkeypatch) -> tuple[str, str]:
    """(source URL, warehouse URL), both fresh. The source: ``tickets`` (a change timestamp
    kept by a trigger, a deletion flag), ``seats`` (composite key, deleted physically) and
    ``lines`` (deleted physically, reconciled daily)."""
    source = pg.create_database(SOURCE_DB)
    rows(
        source,
        """
        create table tickets (id bigint primary key, status text not null,
            created_at timestamptz not null, updated_at timestamptz not null default now(),
            is_deleted boolean not null default false);
        create function touch() returns trigger language plpgsql as
            $$ begin new.updated_at := now(); return new; end $$;
        create trigger tickets_touch before update on tickets
            for each row execute function touch();
        insert into tickets (id, status, created_at, updated_at)
            select g, 'open', now() - interval '400 days' + g * interval '1 day',
                   now() - interval '400 days' + g * interval '1 day'
            from generate_series(1, 100) g;
        create table seats (venue text, seat int, price numeric(8, 2) not null,
            primary key (venue, seat));
        insert into seats select v, s, s * 1.5 from unnest(array['north', 'south']) v,
            generate_series(1, 50) s;
        create table lines (id int primary key, body text);
        insert into lines select g, 'line ' || g from generate_series(1, 20) g;
        """,
    )
    monkeypatch.setenv("CHANGES_SOURCE_URL", source)
    return source, pg.create_database(WAREHOUSE_DB)


def _source() -> SqlDatabaseSource:
    return SqlDatabaseSource.model_validate(
        {
            "name": "changes",
            "type": "sql_database",
            "credentials": "env:CHANGES_SOURCE_URL",
            "schema": "public",
            "tables": {
                "tickets": {
                    "primary_key": "id",
                    "cursor": "updated_at",
                    "lookback": "1m",
                    "hard_delete": "is_deleted",
                },
                "seats": {"primary_key": ["venue", "seat"], "reconcile": "per_run"},
                "lines": {"primary_key": "id", "reconcile": "daily"},
            },
        }
    )


def _raw(warehouse: str, statement: str) -> list[tuple]:
    return rows(warehouse, statement)


def test_late_updates_marked_and_physical_deletes_reach_raw(databases, dlt_home):
    source, warehouse = databases
    first = ingest(_source(), destination_url=warehouse)
    assert first.rows == {"tickets": 100, "seats": 100, "lines": 20}
    assert first.deleted == {"seats": 0, "lines": 0}

    rows(
        source,
        """
        update tickets set status = 'closed' where id = 2;   -- a 400-day-old row, updated late
        update tickets set is_deleted = true where id = 7;   -- marked deleted
        delete from seats where (venue, seat) in (('north', 3), ('south', 3), ('south', 50));
        delete from lines where id in (4, 5);
        """,
    )
    second = ingest(_source(), destination_url=warehouse)

    # the two changed rows, by their change time, and the row at the stored cursor (re-read)
    assert second.rows["tickets"] == 3
    assert _raw(warehouse, "select status from raw_changes.tickets where id = 2") == [("closed",)]
    assert _raw(warehouse, "select count(*), max(id) from raw_changes.tickets where id = 7") == [
        (0, None)
    ]
    assert _raw(warehouse, "select count(*) from raw_changes.tickets") == [(99,)]
    # physically deleted: gone from raw, counted and recorded
    assert second.deleted == {"seats": 3}  # lines: daily, already reconciled today
    assert _raw(warehouse, "select venue, seat from raw_changes.seats where seat in (3, 50)") == [
        ("north", 50)
    ]
    assert _raw(warehouse, "select count(*) from raw_changes.seats") == [(97,)]
    assert _raw(
        warehouse,
        "select table_name, source_keys, deleted from raw_changes._elt_reconcile"
        " order by reconciled_at",
    ) == [("seats", 100, 0), ("lines", 20, 0), ("seats", 97, 3)]
    assert _raw(warehouse, "select count(*) from raw_changes.lines") == [(20,)]

    # the next day the daily table is reconciled too
    rows(warehouse, "update raw_changes._elt_reconcile set reconciled_at = now() - interval '1d'")
    third = ingest(_source(), destination_url=warehouse)
    assert third.deleted == {"seats": 0, "lines": 2}
    assert _raw(warehouse, "select count(*), sum(id) from raw_changes.lines") == [(18, 201)]


def test_demo_pipeline_follows_a_late_update_and_a_deleted_order_into_the_marts(pg, demo_sources):
    from elt import config as elt_config
    from elt.runner import run_pipeline

    config = elt_config.load(check_env=True)
    first = run_pipeline(config, "jaffle_daily")
    assert first.status == "succeeded", first.error
    shop, warehouse = pg.url("shop"), pg.url()
    [(oldest, cents)] = rows(
        shop, "select id, subtotal from orders order by ordered_at, id limit 1"
    )
    [(gone,)] = rows(shop, "select id from orders order by ordered_at desc, id limit 1")
    rows(
        shop,
        f"""
        update orders set subtotal = subtotal + 100, order_total = order_total + 100
            where id = '{oldest}';
        delete from items where order_id = '{gone}';
        delete from orders where id = '{gone}';
        """,
    )

    second = run_pipeline(config, "jaffle_daily")

    assert second.status == "succeeded", second.error
    (source_orders,) = rows(shop, "select count(*) from orders")[0]
    assert rows(warehouse, "select count(*) from raw_shop.orders") == [(source_orders,)]
    assert rows(warehouse, "select count(*) from analytics.orders") == [(source_orders,)]
    assert rows(warehouse, f"select 1 from analytics.orders where order_id = '{gone}'") == []
    assert rows(
        warehouse, f"select subtotal * 100 from analytics.orders where order_id = '{oldest}'"
    ) == [(cents + 100,)]
    assert rows(warehouse, f"select 1 from analytics.order_items where order_id = '{gone}'") == []


def test_a_new_source_column_is_backfilled_for_every_row(databases, dlt_home):
    source, warehouse = databases
    assert ingest(_source(), destination_url=warehouse).rows["tickets"] == 100
    # a column added at the source, filled for every row without touching updated_at
    rows(source, "alter table tickets add column priority int not null default 3")
    rows(source, "update tickets set status = 'pending' where id = 10")  # one real change

    messages: list[str] = []
    second = ingest(_source(), destination_url=warehouse, progress=messages.append)

    assert _raw(
        warehouse, "select count(*), count(priority), min(priority) from raw_changes.tickets"
    ) == [(100, 100, 3)]
    assert second.rows["tickets"] == 100
    assert "changes: re-reading all of tickets: new column(s) priority" in messages
    # the stored cursor was left alone: the next run is incremental again
    rows(source, "update tickets set priority = 1 where id = 11")
    third = ingest(_source(), destination_url=warehouse)
    assert third.rows["tickets"] <= 3
    assert _raw(warehouse, "select priority from raw_changes.tickets where id = 11") == [(1,)]
