"""Least-privilege PostgreSQL roles: a loader, a transformer and a reader.

``elt up`` creates them in the embedded warehouse; production runs :func:`grants_sql` once
(docs/security.md). Each role has a generated password in ``.elt/<role>.password`` (mode
0600, never printed).

- ``elt_loader`` writes raw data only: it may create schemas (dlt makes ``raw_<source>``)
  and owns what it creates; it has no access to the audit or published schemas.
- ``elt_transformer`` reads the raw schemas and writes the audit schemas and the published one.
- ``elt_reader`` reads the published schema only and can write nowhere.

Every run works under these roles when they are in use (:func:`in_use`): dlt logs in as
``elt_loader`` (:func:`loader_url`), dbt's profile sets ``role: elt_transformer`` and publish
runs ``set local role elt_transformer``, so the work is checked against each role's grants and
what it creates is owned by the role: the loader and the transformer never trip over each
other's objects.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from psycopg2 import sql
from psycopg2.extensions import cursor

from elt import paths, settings
from elt.settings import Connection

LOADER = "elt_loader"
TRANSFORMER = "elt_transformer"
READER = "elt_reader"
ROLES = (LOADER, TRANSFORMER, READER)


# bump when grants_sql changes, so `elt up` re-applies the grants to an existing warehouse
GRANTS_VERSION = "3"


def _grants_file(database: str) -> Path:
    """Records which GRANTS_VERSION ``database`` has (state folder, one file a database)."""
    return paths.state_dir() / f"roles.{database}.grants"


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


def in_use() -> bool:
    """True when runs work under the roles: ``ELT_ROLES`` (``on``/``off``) decides; without
    it, when ``elt up`` created them here (their password files exist)."""
    flag = os.environ.get("ELT_ROLES", "").strip().lower()
    if flag in ("on", "1", "true", "yes"):
        return True
    if flag in ("off", "0", "false", "no"):
        return False
    return all(password_file(role).exists() for role in ROLES)


def session_role(role: str) -> str | None:
    """``role`` when runs work under the roles, else None (one identity for everything)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; known: {', '.join(ROLES)}")
    return role if in_use() else None


def loader_url(url: str) -> str:
    """The URL dlt loads with: ``ELT_LOADER_URL`` if set, else the loader's own login to the
    database of ``url`` when the roles are in use, else ``url`` itself."""
    explicit = os.environ.get("ELT_LOADER_URL")
    if explicit:
        return explicit
    if session_role(LOADER) is None:
        return url
    if not password_file(LOADER).exists():
        raise RuntimeError(
            "ELT_ROLES=on but no loader login: set ELT_LOADER_URL to the elt_loader role's URL"
            " (docs/security.md)"
        )
    # its own login, not `options=-c role=`: dlt's ADBC loader mangles a multi-option string
    return role_connection(LOADER, settings.parse_url(url)).url()


def set_local_role(cur: cursor, role: str) -> None:
    """Make the rest of ``cur``'s transaction run as ``role`` (when the roles are in use)."""
    name = session_role(role)
    if name is not None:
        cur.execute(sql.SQL("set local role {}").format(sql.Identifier(name)))


def grants_sql(database: str, *, lock_out_others: bool = True) -> list[sql.Composable]:
    """The statements that give each role its grants on ``database`` (idempotent).

    Production runs these as the database owner after creating the three login roles.
    ``lock_out_others`` also revokes what PostgreSQL grants every role by default (connect,
    temporary tables, creating in ``public``): off for a database other logins use too.
    """
    db = sql.Identifier(database)
    loader, transformer, reader = (sql.Identifier(r) for r in ROLES)
    statements = []
    if lock_out_others:
        # nobody but the roles below connects; temporary tables are a write too
        statements += [
            sql.SQL("revoke all on database {} from public").format(db),
            sql.SQL("revoke create on schema public from public"),
        ]
    statements += [
        sql.SQL("grant connect on database {} to {}, {}, {}").format(
            db, loader, transformer, reader
        ),
        # dlt creates raw_<source> schemas; dbt and publish create audit* and analytics
        sql.SQL("grant create on database {} to {}, {}").format(db, loader, transformer),
        # dbt's unit tests build their fixtures in temporary tables; dlt's merge into child
        # tables (nested lists) keeps the keys to delete in a temporary table
        sql.SQL("grant temporary on database {} to {}, {}").format(db, transformer, loader),
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


def _existing_schema_grants(cur: cursor) -> list[sql.Composed]:
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


def _like(name: str) -> str:
    return name.replace("_", "\\_")


def _owner_by_schema() -> list[tuple[str, str]]:
    """(schema LIKE pattern, the role that owns it) for the schemas runs write."""
    audit, published = _like(settings.dbt_schema()), _like(settings.published_schema())
    return [
        ("raw\\_%", LOADER),
        (audit, TRANSFORMER),
        (audit + "\\_%", TRANSFORMER),
        (published, TRANSFORMER),
        (published + "\\_\\_next", TRANSFORMER),
    ]


_MISOWNED = """
    select 'schema', n.nspname, null from pg_namespace n
     where n.nspname like %(pattern)s and n.nspowner <> %(role)s::regrole
    union all
    select c.relkind::text, n.nspname, c.relname from pg_class c
      join pg_namespace n on n.oid = c.relnamespace
     where n.nspname like %(pattern)s and c.relkind in ('r', 'p', 'v', 'm')
       and c.relowner <> %(role)s::regrole
"""
_ALTER_BY_KIND = {"r": "table", "p": "table", "v": "view", "m": "materialized view"}


def _adopt_statements(cur: cursor) -> list[sql.Composed]:
    """Hand schemas and relations made before the roles were used (by an administrator) to
    the role that works in them, so the role can replace and drop them."""
    statements: list[sql.Composed] = []
    for pattern, role in _owner_by_schema():
        cur.execute(_MISOWNED, {"pattern": pattern, "role": role})
        for kind, schema, relation in cur.fetchall():
            owner = sql.Identifier(role)
            if kind == "schema":
                target = sql.SQL("schema {}").format(sql.Identifier(schema))
            else:
                target = sql.SQL(_ALTER_BY_KIND[kind] + " {}").format(
                    sql.Identifier(schema, relation)
                )
            statements.append(sql.SQL("alter {} owner to {}").format(target, owner))
    return statements


def ensure_roles(admin: Connection, *, lock_out_others: bool = True) -> None:
    """Create the three roles if missing, set their passwords and grants (idempotent);
    ``lock_out_others``: see :func:`grants_sql`."""
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
            grants = grants_sql(admin.database, lock_out_others=lock_out_others)
            for statement in grants + _existing_schema_grants(cur):
                cur.execute(statement)
            for statement in _adopt_statements(cur):
                cur.execute(statement)
        _grants_file(admin.database).write_text(GRANTS_VERSION + "\n")
    finally:
        conn.close()


def roles_ready(admin: Connection) -> bool:
    """True when every role exists and has its password file (nothing to do)."""
    import psycopg2

    if not all(password_file(role).exists() for role in ROLES):
        return False
    done = _grants_file(admin.database)
    if not done.exists() or done.read_text().strip() != GRANTS_VERSION:
        return False
    conn = psycopg2.connect(admin.url(), connect_timeout=10)
    try:
        with conn.cursor() as cur:
            cur.execute("select count(*) from pg_roles where rolname = any(%s)", (list(ROLES),))
            # objects made before the roles are handed over once, when the grants change
            # (GRANTS_VERSION), not on every call: a run must create them as the roles itself
            row = cur.fetchone()
            return row is not None and row[0] == len(ROLES)
    finally:
        conn.close()
