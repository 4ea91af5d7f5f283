"""Benchmark data at a chosen scale, on the benchmark's own embedded warehouse.

jafgen (through :mod:`elt.demo.generate`) makes the base data; for more, rows are
replicated inside PostgreSQL with new ids (``<id>-x<n>``) by ``insert … select`` over
``generate_series``, which is far faster than simulating more years.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import psycopg2
from psycopg2 import sql

from elt import paths

SEED = 42


def bench_home() -> Path:
    """The benchmark's state folder (its own warehouse, data and dlt folders);
    ``BENCH_HOME`` overrides it so two benchmarks can run at once without sharing a server."""
    override = os.environ.get("BENCH_HOME")
    return Path(override) if override else paths.project_root() / ".elt" / "bench" / "harness"


def use_bench_home() -> None:
    """Point this process (and the processes it starts) at :func:`bench_home`."""
    os.environ["ELT_HOME"] = str(bench_home())
    os.environ.pop("ELT_WAREHOUSE_URL", None)
    bench_home().mkdir(parents=True, exist_ok=True)


def execute(url: str, statement: str | sql.Composable, params: tuple = ()) -> None:
    """Run one statement in autocommit mode."""
    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement, params)
    finally:
        conn.close()


def scalar(url: str, statement: str | sql.Composable, params: tuple = ()):
    """The single value of a query."""
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchone()[0]
    finally:
        conn.close()


def jafgen_data(years: float) -> Path:
    """The jafgen CSVs for ``years`` (seed 42), generated once and cached."""
    from elt.demo.generate import generate

    folder = bench_home() / "data" / f"jafgen-{years:g}y"
    marker = folder / "done.json"
    if marker.exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    generate(folder, years=years, seed=SEED)
    marker.write_text(json.dumps({"years": years, "seed": SEED}) + "\n")
    return folder


def load_shop_database(csv_dir: Path, admin_url: str, database: str) -> str:
    """(Re)create the shop database ``database`` from the CSVs; returns its read-only URL."""
    from elt.demo.shop import load_shop

    return load_shop(csv_dir, admin_url, database=database).url


def replicate_items(db_url: str, target: str, factor: int) -> int:
    """Create table ``target`` holding the shop's items ``factor`` times (new ids), with a
    primary key and an ``updated_at`` cursor column; returns its row count."""
    name = sql.Identifier(target)
    execute(db_url, sql.SQL("drop table if exists {}").format(name))
    execute(
        db_url,
        sql.SQL(
            "create table {} as select items.id || '-x' || n as id, items.order_id, items.sku,"
            " now() as updated_at from items cross join generate_series(1, %s) as n"
        ).format(name),
        (factor,),
    )
    execute(db_url, sql.SQL("alter table {} add primary key (id)").format(name))
    execute(db_url, sql.SQL("create index on {} (updated_at)").format(name))
    execute(db_url, sql.SQL("analyze {}").format(name))
    return int(scalar(db_url, sql.SQL("select count(*) from {}").format(name)))


def scale_shop(db_url: str, factor: int) -> dict[str, int]:
    """Multiply the shop's orders and items in place (``factor``× rows, new ids; customers,
    stores and products stay as they are); returns the row counts."""
    if factor > 1:
        execute(
            db_url,
            "insert into orders (id, customer, ordered_at, store_id, subtotal, tax_paid,"
            " order_total) select id || '-x' || n, customer, ordered_at, store_id, subtotal,"
            " tax_paid, order_total from orders cross join generate_series(2, %s) as n",
            (factor,),
        )
        execute(
            db_url,
            "insert into items (id, order_id, sku) select id || '-x' || n,"
            " order_id || '-x' || n, sku from items cross join generate_series(2, %s) as n",
            (factor,),
        )
        execute(db_url, "analyze orders; analyze items")
    return {
        table: int(scalar(db_url, sql.SQL("select count(*) from {}").format(sql.Identifier(table))))
        for table in ("orders", "items")
    }


def export_csv_files(db_url: str, table: str, folder: Path, parts: int) -> list[Path]:
    """Write ``table`` as ``parts`` CSV files (with a header) into ``folder``."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    total = int(scalar(db_url, sql.SQL("select count(*) from {}").format(sql.Identifier(table))))
    per_part = -(-total // parts)
    files = []
    conn = psycopg2.connect(db_url)
    try:
        with conn.cursor() as cur:
            for part in range(parts):
                path = folder / f"{table}_{part:03d}.csv"
                query = sql.SQL(
                    "copy (select id, order_id, sku from {} order by id limit {} offset {})"
                    " to stdout with (format csv, header true)"
                ).format(sql.Identifier(table), sql.Literal(per_part), sql.Literal(part * per_part))
                with path.open("w") as handle:
                    cur.copy_expert(query.as_string(cur), handle)
                files.append(path)
    finally:
        conn.close()
    return files


def replicate_tweets(source_csv: Path, target_csv: Path, factor: int) -> int:
    """Write the tweets ``factor`` times with new ids; returns the number of rows."""
    with source_csv.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    target_csv.parent.mkdir(parents=True, exist_ok=True)
    with target_csv.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "user_id", "tweeted_at", "content"])
        writer.writeheader()
        for n in range(1, factor + 1):
            for row in rows:
                writer.writerow({**row, "id": f"{row['id']}-x{n}"})
    return len(rows) * factor


def write_secret_file(path: Path, value: str) -> Path:
    """Write ``value`` to a file only its owner can read (the demo API's token file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    os.chmod(path, 0o600)
    return path
