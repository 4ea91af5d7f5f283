"""The demo's OLTP source: a ``shop`` PostgreSQL database loaded from the jafgen CSVs.

The database is recreated from scratch on every load, with primary and foreign keys, and a
read-only login role ``shop_app`` for the ingestion to use. ``orders.updated_at`` is the
change timestamp the ingestion's cursor follows: a trigger sets it on every update.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import connection, cursor

SHOP_ROLE = "shop_app"

# Load order respects the foreign keys; constraints are added after the COPY (faster).
TABLES: dict[str, str] = {
    "stores": """
        id text not null,
        name text not null,
        opened_at timestamp not null,
        tax_rate numeric(6, 4) not null""",
    "products": """
        sku text not null,
        name text not null,
        type text not null,
        price bigint not null,
        description text""",
    "customers": """
        id text not null,
        name text not null""",
    "orders": """
        id text not null,
        customer text not null,
        ordered_at timestamp not null,
        store_id text not null,
        subtotal bigint not null,
        tax_paid bigint not null,
        order_total bigint not null,
        updated_at timestamptz not null default now()""",
    "items": """
        id text not null,
        order_id text not null,
        sku text not null""",
}

_CONSTRAINTS = """
alter table stores add primary key (id);
alter table products add primary key (sku);
alter table customers add primary key (id);
alter table orders add primary key (id);
alter table items add primary key (id);
alter table orders add constraint orders_customer_fkey
    foreign key (customer) references customers (id);
alter table orders add constraint orders_store_id_fkey
    foreign key (store_id) references stores (id);
alter table items add constraint items_order_id_fkey
    foreign key (order_id) references orders (id);
alter table items add constraint items_sku_fkey
    foreign key (sku) references products (sku);
create index orders_ordered_at_idx on orders (ordered_at);
create index orders_updated_at_idx on orders (updated_at);
create index items_order_id_idx on items (order_id);
create function touch_updated_at() returns trigger language plpgsql as
    $$ begin new.updated_at := now(); return new; end $$;
create trigger orders_touch_updated_at before update on orders
    for each row execute function touch_updated_at();
"""


class ShopLoadError(RuntimeError):
    """The shop database could not be created or loaded."""


@dataclass(frozen=True)
class ShopDatabase:
    """The loaded shop: ``url`` logs in as ``shop_app`` (it holds the password: never print it)."""

    url: str = field(repr=False)
    database: str
    rows: dict[str, int]
    role: str = SHOP_ROLE


def load_shop(
    csv_dir: Path, admin_url: str, *, database: str = "shop", password: str | None = None
) -> ShopDatabase:
    """(Re)create ``database`` on the server of ``admin_url`` and COPY the CSVs into it.

    ``admin_url`` is a superuser URL to any database on that server. The role ``shop_app``
    is created (or has its password set to ``password``, default: a fresh one) and may only
    read the five tables.
    """
    files = {table: _csv_file(csv_dir, table) for table in TABLES}
    password = password or secrets.token_urlsafe(24)
    _recreate_database(admin_url, database, password)
    conn = _connect(_with_database(admin_url, database))
    try:
        with conn, conn.cursor() as cur:  # one transaction: all tables load, or none
            _create_tables(cur)
            for table, path in files.items():
                _copy(cur, table, path)
            _add_constraints(cur, csv_dir)
            _grant_read(cur)
            rows = {table: _count(cur, table) for table in TABLES}
    finally:
        conn.close()
    return ShopDatabase(
        url=_role_url(admin_url, database, SHOP_ROLE, password), database=database, rows=rows
    )


def _csv_file(csv_dir: Path, table: str) -> Path:
    path = csv_dir / f"{table}.csv"
    if not path.is_file():
        raise ShopLoadError(
            f"{path} is missing: generate the demo data first (elt.demo.generate.generate)"
        )
    return path


def _connect(url: str) -> connection:
    try:
        return psycopg2.connect(url)
    except psycopg2.OperationalError as exc:
        # The driver's message never contains the password; the URL is not repeated.
        raise ShopLoadError(f"cannot connect to PostgreSQL for the shop database: {exc}") from exc


def _recreate_database(admin_url: str, database: str, password: str) -> None:
    conn = _connect(admin_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            name, role = sql.Identifier(database), sql.Identifier(SHOP_ROLE)
            cur.execute(sql.SQL("drop database if exists {} with (force)").format(name))
            cur.execute(sql.SQL("create database {}").format(name))
            cur.execute("select 1 from pg_roles where rolname = %s", (SHOP_ROLE,))
            verb = "alter" if cur.fetchone() else "create"
            # A SCRAM verifier, not the password, travels to the server (and its logs).
            cur.execute(
                sql.SQL(verb + " role {} login password %s").format(role),
                (_scram_verifier(password),),
            )
            cur.execute(sql.SQL("grant connect on database {} to {}").format(name, role))
    finally:
        conn.close()


def _create_tables(cur: cursor) -> None:
    for table, columns in TABLES.items():
        cur.execute(sql.SQL("create table {} ({})").format(sql.Identifier(table), sql.SQL(columns)))


def _add_constraints(cur: cursor, csv_dir: Path) -> None:
    try:
        cur.execute(_CONSTRAINTS)
    except psycopg2.IntegrityError as exc:
        raise ShopLoadError(
            f"the CSV files in {csv_dir} break a primary or foreign key of the shop: "
            f"{exc.diag.message_primary} ({exc.diag.message_detail}); regenerate the data"
        ) from exc


def _grant_read(cur: cursor) -> None:
    cur.execute(
        sql.SQL(
            "revoke all on schema public from public;"
            "grant usage on schema public to {role};"
            "grant select on all tables in schema public to {role}"
        ).format(role=sql.Identifier(SHOP_ROLE))
    )


def _copy(cur: cursor, table: str, path: Path) -> None:
    with path.open(newline="") as handle:
        header = next(csv.reader(handle), [])
        expected = [name for name in _column_names(table) if name != "updated_at"]
        if sorted(header) != sorted(expected):
            raise ShopLoadError(
                f"{path}: header {header} does not match table {table} columns {expected}"
            )
        handle.seek(0)
        statement = sql.SQL("copy {} ({}) from stdin with (format csv, header true)").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, header))
        )
        try:
            cur.copy_expert(statement.as_string(cur), handle)
        except psycopg2.DataError as exc:
            raise ShopLoadError(f"{path}: cannot load into table {table}: {exc}") from exc


def _column_names(table: str) -> list[str]:
    return [line.split()[0] for line in TABLES[table].strip().splitlines()]


def _count(cur: cursor, table: str) -> int:
    cur.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(table)))
    row = cur.fetchone()
    return int(row[0]) if row else 0


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def _role_url(admin_url: str, database: str, role: str, password: str) -> str:
    parts = urlsplit(admin_url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = f"{quote(role, safe='')}:{quote(password, safe='')}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc, path=f"/{database}"))


def _scram_verifier(password: str, iterations: int = 4096) -> str:
    """PostgreSQL's SCRAM-SHA-256 password verifier (RFC 5802/7677)."""
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"
