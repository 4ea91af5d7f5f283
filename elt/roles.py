"""Least-privilege PostgreSQL roles: a loader, a transformer and a reader.

``elt up`` creates them in the embedded warehouse; production runs :func:`grants_sql` once
(docs/security.md). Each role has a generated password in ``.elt/<role>.password`` (mode
0600, never printed).

- ``elt_loader`` writes raw data only: it may create schemas (dlt makes ``raw_<source>``)
  and owns what it creates; it has no access to the audit or published schemas.
- ``elt_transformer`` reads the raw schemas and writes the audit schemas and the published one.
- ``elt_reader`` reads the published schema only and can write nowhere.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from psycopg2 import sql

from elt import paths, settings
from elt.settings import Connection

LOADER = "elt_loader"
TRANSFORMER = "elt_transformer"
READER = "elt_reader"
ROLES = (LOADER, TRANSFORMER, READER)


def password_file(role: str) -> Path:
    """Where the generated password of ``role`` is kept (mode 0600)."""
    return paths.state_dir() / f"{role}.password"


def _password(role: str) -> tuple[str, bool]:
    """The role's password, generating it first; True when it was just generated."""
    path = password_file(role)
    if path.exists():
        return path.read_text().strip(), False
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(24))
    return path.read_text().strip(), True


def stored_passwords() -> list[str]:
    """Every generated role password (for redaction)."""
    return [password_file(r).read_text().strip() for r in ROLES if password_file(r).exists()]


def role_connection(role: str, admin: Connection | None = None) -> Connection:
    """Connection settings of ``role`` on the warehouse (``admin`` gives host and database)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; known: {', '.join(ROLES)}")
    admin = admin or settings.warehouse()
    path = password_file(role)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run `elt up` to create the roles")
    return Connection(admin.host, admin.port, role, path.read_text().strip(), admin.database)


def grants_sql(database: str) -> list[sql.Composed]:
    """The statements that give each role its grants on ``database`` (idempotent).

    Production runs these as the database owner after creating the three login roles.
    """
    db = sql.Identifier(database)
    loader, transformer, reader = (sql.Identifier(r) for r in ROLES)
    statements = [
        # nobody but the roles below connects; temporary tables are a write too
        sql.SQL("revoke all on database {} from public").format(db),
        sql.SQL("revoke create on schema public from public"),
        sql.SQL("grant connect on database {} to {}, {}, {}").format(
            db, loader, transformer, reader
        ),
        # dlt creates raw_<source> schemas; dbt and publish create audit* and analytics
        sql.SQL("grant create on database {} to {}, {}").format(db, loader, transformer),
        # whatever the loader creates, the transformer may read (and nothing more)
        sql.SQL("alter default privileges for role {} grant usage on schemas to {}").format(
            loader, transformer
        ),
        sql.SQL("alter default privileges for role {} grant select on tables to {}").format(
            loader, transformer
        ),
        # what the transformer publishes, the reader may read
        sql.SQL("alter default privileges for role {} grant select on tables to {}").format(
            transformer, reader
        ),
    ]
    return statements


def _existing_schema_grants(cur) -> list[sql.Composed]:
    """Grants on schemas made before the roles existed (by the warehouse superuser)."""
    transformer, reader = sql.Identifier(TRANSFORMER), sql.Identifier(READER)
    published, audit = settings.published_schema(), settings.dbt_schema()
    cur.execute(
        "select nspname from pg_namespace where nspname like 'raw\\_%%'"
        " or nspname = %s or nspname like %s or nspname = %s",
        (audit, audit.replace("_", "\\_") + "\\_%", published),
    )
    statements: list[sql.Composed] = []
    for (name,) in cur.fetchall():
        schema = sql.Identifier(name)
        if name.startswith("raw_"):
            statements += [
                sql.SQL("grant usage on schema {} to {}").format(schema, transformer),
                sql.SQL("grant select on all tables in schema {} to {}").format(
                    schema, transformer
                ),
            ]
            continue
        statements += [
            sql.SQL("grant usage, create on schema {} to {}").format(schema, transformer),
            sql.SQL("grant all on all tables in schema {} to {}").format(schema, transformer),
        ]
        if name == published:
            statements += [
                sql.SQL("grant usage on schema {} to {}").format(schema, reader),
                sql.SQL("grant select on all tables in schema {} to {}").format(schema, reader),
            ]
    return statements


def ensure_roles(admin: Connection) -> None:
    """Create the three roles if missing, set their passwords and grants (idempotent)."""
    import psycopg2

    conn = psycopg2.connect(admin.url(), connect_timeout=10)
    try:
        conn.autocommit = False
        with conn, conn.cursor() as cur:
            # one setup at a time on a server: concurrent CREATE ROLE would collide
            cur.execute("select pg_advisory_xact_lock(hashtext('elt-roles'))")
            for role in ROLES:
                password, fresh = _password(role)
                cur.execute("select 1 from pg_roles where rolname = %s", (role,))
                exists = cur.fetchone() is not None
                ident = sql.Identifier(role)
                if not exists:
                    cur.execute(sql.SQL("create role {} login").format(ident))
                if fresh or not exists:
                    cur.execute(sql.SQL("alter role {} password %s").format(ident), (password,))
            for statement in grants_sql(admin.database) + _existing_schema_grants(cur):
                cur.execute(statement)
    finally:
        conn.close()


def roles_ready(admin: Connection) -> bool:
    """True when every role exists and has its password file (nothing to do)."""
    import psycopg2

    if not all(password_file(role).exists() for role in ROLES):
        return False
    conn = psycopg2.connect(admin.url(), connect_timeout=10)
    try:
        with conn.cursor() as cur:
            cur.execute("select count(*) from pg_roles where rolname = any(%s)", (list(ROLES),))
            return cur.fetchone()[0] == len(ROLES)
    finally:
        conn.close()
