"""Least privilege: each role created by `elt up` is refused outside its grant."""

from __future__ import annotations

import stat

import psycopg2
import pytest
from psycopg2 import errors

from elt import roles
from elt.settings import Connection

pytestmark = pytest.mark.integration

DATABASE = "roles_test"


def _run(conn: Connection, statement: str) -> list[tuple]:
    with psycopg2.connect(conn.url(), connect_timeout=5) as db, db.cursor() as cur:
        cur.execute(statement)
        return cur.fetchall() if cur.description else []


def _refused(conn: Connection, statement: str) -> str:
    """The error text of ``statement`` run as ``conn``'s role, which must be refused."""
    with pytest.raises(errors.InsufficientPrivilege) as refusal:
        _run(conn, statement)
    return str(refusal.value)


@pytest.fixture(scope="module")
def role_db(pg) -> dict[str, Connection]:
    """A database with audit and published marts made by the superuser, then the roles'
    grants; the loader has loaded ``raw_roles.orders``. Returns a connection per role."""
    pg.create_database(DATABASE)
    admin = Connection(pg.host, pg.port, pg.user, pg.password, DATABASE)
    _run(
        admin,
        "create schema audit; create table audit.orders (id int);"
        " insert into audit.orders values (1);"
        " create schema analytics; create table analytics.orders (id int);"
        " insert into analytics.orders values (1)",
    )
    roles.ensure_roles(admin)
    by_role = {role: roles.role_connection(role, admin) for role in roles.ROLES}
    _run(
        by_role[roles.LOADER],
        "create schema raw_roles; create table raw_roles.orders (id int);"
        " insert into raw_roles.orders values (1), (2)",
    )
    return by_role


def test_elt_up_created_the_roles_with_private_password_files(pg):
    for role in roles.ROLES:
        path = roles.password_file(role)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert len(path.read_text().strip()) >= 24
    with psycopg2.connect(pg.url()) as db, db.cursor() as cur:
        cur.execute(
            "select rolname, rolsuper, rolcreaterole, rolcreatedb from pg_roles"
            " where rolname like 'elt\\_%' order by rolname"
        )
        assert cur.fetchall() == [
            ("elt_loader", False, False, False),
            ("elt_reader", False, False, False),
            ("elt_transformer", False, False, False),
        ]


def test_loader_writes_raw_only(role_db):
    loader = role_db[roles.LOADER]
    assert _run(loader, "select count(*) from raw_roles.orders") == [(2,)]
    assert "permission denied for schema analytics" in _refused(
        loader, "select * from analytics.orders"
    )
    assert "permission denied for schema audit" in _refused(
        loader, "insert into audit.orders values (9)"
    )
    assert "permission denied for schema audit" in _refused(
        loader, "create table audit.sneaky (id int)"
    )


def test_transformer_reads_raw_and_writes_audit_and_published(role_db):
    transformer = role_db[roles.TRANSFORMER]
    assert _run(transformer, "select count(*) from raw_roles.orders") == [(2,)]
    _run(transformer, "insert into audit.orders values (2); create table audit.t2 (id int)")
    _run(transformer, "insert into analytics.orders values (2)")
    assert "permission denied for table orders" in _refused(
        transformer, "insert into raw_roles.orders values (3)"
    )
    assert "permission denied for table orders" in _refused(
        transformer, "delete from raw_roles.orders"
    )
    assert "permission denied for schema raw_roles" in _refused(
        transformer, "create table raw_roles.sneaky (id int)"
    )


def test_reader_reads_published_only_and_writes_nowhere(role_db):
    reader = role_db[roles.READER]
    assert _run(reader, "select count(*) from analytics.orders")[0][0] >= 1
    assert "permission denied for schema raw_roles" in _refused(
        reader, "select * from raw_roles.orders"
    )
    assert "permission denied for schema audit" in _refused(reader, "select * from audit.orders")
    assert "permission denied for table orders" in _refused(
        reader, "insert into analytics.orders values (3)"
    )
    assert "permission denied for schema analytics" in _refused(
        reader, "create table analytics.sneaky (id int)"
    )
    assert "permission denied for database roles_test" in _refused(reader, "create schema sneaky")
    assert "permission denied to create temporary tables" in _refused(
        reader, "create temporary table scratch (id int)"
    )
    assert "permission denied for schema public" in _refused(
        reader, "create table public.sneaky (id int)"
    )


def test_publish_grants_the_reader_the_new_marts(role_db, pg):
    from elt.publish import publish

    admin_url = pg.url(DATABASE)
    # dbt builds the marts as the transformer
    _run(
        role_db[roles.TRANSFORMER],
        "create table audit.customers (id int); insert into audit.customers values (7)",
    )
    publish(admin_url, audit="audit", published="analytics")
    reader = role_db[roles.READER]
    assert _run(reader, "select id from analytics.customers") == [(7,)]
    assert "permission denied for schema audit" in _refused(reader, "select * from audit.customers")


def test_publish_refuses_a_mart_the_transformer_may_not_read(role_db, pg):
    """A table in the audit schema that the transformer cannot read fails the publish by
    name (it is not silently left out) and the published marts stay as they were."""
    from elt.publish import publish

    admin = Connection(pg.host, pg.port, pg.user, pg.password, DATABASE)
    before = _run(admin, "select count(*) from analytics.orders")
    _run(admin, "create table audit.foreign_made (id int)")
    try:
        with pytest.raises(errors.InsufficientPrivilege, match="table foreign_made"):
            publish(pg.url(DATABASE), audit="audit", published="analytics")
        assert _run(admin, "select count(*) from analytics.orders") == before
    finally:
        _run(admin, "drop table audit.foreign_made")
