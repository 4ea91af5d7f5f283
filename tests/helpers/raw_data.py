"""Raw jaffle-shop data in the warehouse exactly as dlt lays it out, without running dlt.

Tests of everything downstream of ingestion (dbt, the quality gate, publish) need the
``raw_shop``, ``raw_social`` and ``raw_landing`` schemas filled quickly and reproducibly:
these helpers generate jafgen CSVs and COPY them in, with ``_dlt_load_id``/``_dlt_id`` on every
row and a completed load recorded in each schema's ``_dlt_loads``. Loads merge on the table's
primary key, as dlt's ``merge`` write disposition does.
"""

from __future__ import annotations

import csv
import io
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import psycopg2
from psycopg2 import sql

from elt import roles

Row = Mapping[str, object]


@dataclass(frozen=True)
class RawTable:
    """A raw table: where dlt puts it, its columns (name, PostgreSQL type) and primary key."""

    schema: str
    name: str
    columns: tuple[tuple[str, str], ...]
    primary_key: tuple[str, ...]

    @property
    def column_names(self) -> list[str]:
        """The data columns, without dlt's own."""
        return [name for name, _ in self.columns]


# The physical types mirror what dlt creates (bigint money, varchar ids, timestamptz for
# API timestamps, plain timestamp from the OLTP database), so staging's casts are exercised.
RAW_TABLES: dict[str, RawTable] = {
    "customers": RawTable(
        "raw_shop", "customers", (("id", "varchar"), ("name", "varchar")), ("id",)
    ),
    "orders": RawTable(
        "raw_shop",
        "orders",
        (
            ("id", "varchar"),
            ("customer", "varchar"),
            ("ordered_at", "timestamp"),
            ("store_id", "varchar"),
            ("subtotal", "bigint"),
            ("tax_paid", "bigint"),
            ("order_total", "bigint"),
            ("updated_at", "timestamptz"),
        ),
        ("id",),
    ),
    "items": RawTable(
        "raw_shop",
        "items",
        (("id", "varchar"), ("order_id", "varchar"), ("sku", "varchar")),
        ("id",),
    ),
    "products": RawTable(
        "raw_shop",
        "products",
        (
            ("sku", "varchar"),
            ("name", "varchar"),
            ("type", "varchar"),
            ("price", "bigint"),
            ("description", "varchar"),
        ),
        ("sku",),
    ),
    "stores": RawTable(
        "raw_shop",
        "stores",
        (
            ("id", "varchar"),
            ("name", "varchar"),
            ("opened_at", "timestamp"),
            ("tax_rate", "double precision"),
        ),
        ("id",),
    ),
    "tweets": RawTable(
        "raw_social",
        "tweets",
        (
            ("id", "varchar"),
            ("user_id", "varchar"),
            ("tweeted_at", "timestamptz"),
            ("content", "text"),
        ),
        ("id",),
    ),
    "supplies": RawTable(
        "raw_landing",
        "supplies",
        (
            ("id", "varchar"),
            ("name", "varchar"),
            ("cost", "bigint"),
            ("perishable", "boolean"),
            ("sku", "varchar"),
        ),
        ("id", "sku"),
    ),
}


def generate_jaffle_csvs(out_dir: Path, *, days: int = 20, seed: int = 42) -> dict[str, Path]:
    """Simulate ``days`` of the jaffle shop with jafgen; one CSV per entity (see RAW_TABLES)."""
    from elt.demo.generate import generate

    return generate(out_dir, years=days / 365, seed=seed)


def read_rows(csv_file: Path) -> list[dict[str, str]]:
    """The rows of a CSV file as dicts keyed by its header."""
    with csv_file.open(newline="") as handle:
        return list(csv.DictReader(handle))


def read_entities(csv_files: Mapping[str, Path]) -> dict[str, list[dict[str, str]]]:
    """Every entity's rows, keyed like RAW_TABLES."""
    return {entity: read_rows(path) for entity, path in csv_files.items()}


def new_load_id(at: float | None = None) -> str:
    """A dlt-style load id: the unix time of the load (default now) as text."""
    return f"{time.time() if at is None else at:.6f}"


def load_raw(
    url: str,
    rows_by_entity: Mapping[str, Iterable[Row]],
    *,
    load_id: str | None = None,
) -> str:
    """Merge rows into the raw tables in one transaction, as one dlt load; returns its load id.

    ``rows_by_entity`` maps RAW_TABLES keys to rows (dicts by source column name; a missing
    ``orders.updated_at`` becomes ``ordered_at``). Schemas and tables are created when absent;
    rows whose primary key already exists are replaced; every touched schema gets a completed
    load in ``_dlt_loads``.
    """
    load_id = load_id or new_load_id()
    unknown = sorted(set(rows_by_entity) - set(RAW_TABLES))
    if unknown:
        raise KeyError(f"unknown raw entities {unknown}; known: {sorted(RAW_TABLES)}")
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            # naive timestamps in the CSVs are UTC, as dlt writes them
            cur.execute("set local time zone 'UTC'")
            # as dlt does: raw tables belong to the loader role, which the transformer reads
            roles.set_local_role(cur, roles.LOADER)
            schemas: set[str] = set()
            for entity, rows in rows_by_entity.items():
                table = RAW_TABLES[entity]
                _ensure_table(cur, table)
                _merge_rows(cur, table, list(rows), load_id)
                schemas.add(table.schema)
            for schema in sorted(schemas):
                _record_load(cur, schema, load_id)
    finally:
        conn.close()
    return load_id


def load_csvs(url: str, csv_files: Mapping[str, Path], *, load_id: str | None = None) -> str:
    """Load every generated CSV (see :func:`generate_jaffle_csvs`) as one load."""
    return load_raw(url, read_entities(csv_files), load_id=load_id)


def _ensure_table(cur, table: RawTable) -> None:
    columns = [
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(pg_type))
        for name, pg_type in table.columns
    ]
    columns += [
        sql.SQL("_dlt_load_id varchar not null"),
        sql.SQL("_dlt_id varchar not null unique"),
    ]
    schema = sql.Identifier(table.schema)
    cur.execute(sql.SQL("create schema if not exists {}").format(schema))
    cur.execute(
        sql.SQL("create table if not exists {}.{} ({})").format(
            schema, sql.Identifier(table.name), sql.SQL(", ").join(columns)
        )
    )
    cur.execute(
        sql.SQL(
            "create table if not exists {}._dlt_loads (load_id varchar not null,"
            " schema_name varchar, status bigint not null, inserted_at timestamptz not null,"
            " schema_version_hash varchar)"
        ).format(schema)
    )


def _merge_rows(cur, table: RawTable, rows: list[Row], load_id: str) -> None:
    if not rows:
        return
    target = sql.SQL("{}.{}").format(sql.Identifier(table.schema), sql.Identifier(table.name))
    # a work table beside the target (the loader role may not create temporary tables)
    staged = sql.Identifier(table.schema, f"_staged_{table.name}")
    cur.execute(sql.SQL("create unlogged table {} (like {})").format(staged, target))
    names = [*table.column_names, "_dlt_load_id", "_dlt_id"]
    copy = sql.SQL("copy {} ({}) from stdin with (format csv)").format(
        staged, sql.SQL(", ").join(map(sql.Identifier, names))
    )
    cur.copy_expert(copy.as_string(cur), _csv_buffer(table, rows, load_id))
    key_match = sql.SQL(" and ").join(
        sql.SQL("t.{0} = s.{0}").format(sql.Identifier(column)) for column in table.primary_key
    )
    cur.execute(
        sql.SQL("delete from {} as t using {} as s where {}").format(target, staged, key_match)
    )
    cur.execute(sql.SQL("insert into {} select * from {}").format(target, staged))
    cur.execute(sql.SQL("drop table {}").format(staged))


def _csv_buffer(table: RawTable, rows: list[Row], load_id: str) -> io.StringIO:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        values = dict(row)
        if table.name == "orders" and not values.get("updated_at"):
            values["updated_at"] = values["ordered_at"]
        missing = [name for name in table.column_names if name not in values]
        if missing:
            raise KeyError(f"{table.schema}.{table.name}: row {row!r} has no {missing}")
        writer.writerow(
            [*(values[name] for name in table.column_names), load_id, uuid.uuid4().hex[:14]]
        )
    buffer.seek(0)
    return buffer


def _record_load(cur, schema: str, load_id: str) -> None:
    cur.execute(
        sql.SQL(
            "insert into {}._dlt_loads (load_id, schema_name, status, inserted_at)"
            " values (%s, %s, 0, now())"
        ).format(sql.Identifier(schema)),
        (load_id, schema.removeprefix("raw_")),
    )
