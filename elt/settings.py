"""The one module that knows connections and tool settings.

Every tool gets the warehouse from here: dbt through ``PG*``/``DBT_ENV_SECRET_PGPASSWORD``
variables read by the generated profile (``elt.project``), dlt and GX through :func:`warehouse_url`,
psql through ``PGPASSFILE``. With ``ELT_WAREHOUSE_URL`` set, that database is used and
nothing local is started; otherwise the embedded PostgreSQL (``elt.warehouse``) is.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from elt import paths

# Telemetry off and every tool's home inside .elt/, so nothing is written to $HOME or /tmp.
_QUIET_TOOLS = {
    "RUNTIME__DLTHUB_TELEMETRY": "false",
    "GX_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    # dlt would otherwise import Airflow to look for secrets: 6-25 s per process
    "PROVIDERS__ENABLE_AIRFLOW_SECRETS": "false",
    # a fresh worker folder has no dlt pipeline state: take it (cursors, schema) from the
    # warehouse. dlt's default, pinned because stateless tasks depend on it
    "RESTORE_FROM_DESTINATION": "true",
}


@dataclass(frozen=True)
class Connection:
    """A PostgreSQL connection; ``password`` must never be printed (use :meth:`display_url`)."""

    host: str
    port: int
    user: str
    password: str
    database: str

    def url(self, database: str | None = None, *, driver: str = "postgresql") -> str:
        """A URL with the password, for handing to a library; never log it."""
        return (
            f"{driver}://{quote(self.user, safe='')}:{quote(self.password, safe='')}"
            f"@{self.host}:{self.port}/{database or self.database}"
        )

    def display_url(self, database: str | None = None) -> str:
        """The URL with the password masked, safe to print."""
        return f"postgresql://{self.user}:***@{self.host}:{self.port}/{database or self.database}"

    def with_database(self, database: str) -> Connection:
        """The same server and credentials, another database."""
        return replace(self, database=database)


class WarehouseUrlError(ValueError):
    """ELT_WAREHOUSE_URL is set but cannot be used."""


def parse_url(url: str, *, name: str = "ELT_WAREHOUSE_URL") -> Connection:
    """Parse a postgresql:// URL; the error names the variable, never its value."""
    parts = urlsplit(url)
    if not parts.scheme.startswith("postgres"):
        raise WarehouseUrlError(
            f"{name} must be a postgresql:// URL (got scheme {parts.scheme!r}); "
            "example: postgresql://user:password@host:5432/warehouse"
        )
    missing = [
        label
        for label, value in (
            ("host", parts.hostname),
            ("user", parts.username),
            ("password", parts.password),
            ("database", parts.path.lstrip("/")),
        )
        if not value
    ]
    if missing:
        raise WarehouseUrlError(f"{name} has no {', '.join(missing)}: give all of them in the URL")
    return Connection(
        host=parts.hostname or "",
        port=parts.port or 5432,
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        database=parts.path.lstrip("/"),
    )


def is_external() -> bool:
    """True when ELT_WAREHOUSE_URL points at a warehouse we do not manage."""
    return bool(os.environ.get("ELT_WAREHOUSE_URL"))


def warehouse(*, start: bool = True) -> Connection:
    """The warehouse connection; starts the embedded server first when ``start`` is true."""
    external = os.environ.get("ELT_WAREHOUSE_URL")
    if external:
        return parse_url(external)
    from elt import warehouse as embedded  # local import: keeps config-only commands light

    return embedded.ensure_running() if start else embedded.connection()


def warehouse_url(database: str | None = None, *, driver: str = "postgresql") -> str:
    """The warehouse URL with credentials (starting the embedded server if needed)."""
    return warehouse().url(database, driver=driver)


def dbt_schema() -> str:
    """The schema dbt builds into (the audit schema of write-audit-publish)."""
    return os.environ.get("ELT_DBT_SCHEMA", "audit")


def published_schema() -> str:
    """The schema readers see after publish."""
    return os.environ.get("ELT_PUBLISHED_SCHEMA", "analytics")


def pgpass_file(conn: Connection) -> Path:
    """Write a libpq password file (mode 0600) so psql works without printing the password."""
    path = paths.state_dir() / "pgpass"
    line = f"{conn.host}:{conn.port}:*:{conn.user}:{conn.password}\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(line)
    os.chmod(path, 0o600)
    return path


STATE_FOLDERS = {
    "AIRFLOW_HOME": "airflow",
    "AIRFLOW__COSMOS__CACHE_DIR": "cosmos",
    "PREFECT_HOME": "prefect",
    "DLT_DATA_DIR": "dlt",
}
"""Each tool's home (its environment variable) → its folder under the state folder."""


def tool_homes() -> dict[str, str]:
    """Home folders of every tool, all under .elt/ unless already set, and telemetry switches.

    A deployment (an Airflow pod, a Prefect job) sets its own homes; those are kept.
    """
    state = paths.state_dir()
    homes = {key: str(state / folder) for key, folder in STATE_FOLDERS.items()}
    homes["DLT_PROJECT_DIR"] = str(paths.project_root())
    homes = {key: os.environ.get(key) or value for key, value in homes.items()}
    return {**_QUIET_TOOLS, **homes}


def tool_env(conn: Connection | None = None) -> dict[str, str]:
    """The environment every tool needs: homes, telemetry off, and the warehouse connection."""
    conn = conn or warehouse()
    return {
        **tool_homes(),
        "PGHOST": conn.host,
        "PGPORT": str(conn.port),
        "PGUSER": conn.user,
        "PGDATABASE": conn.database,
        "PGPASSFILE": str(pgpass_file(conn)),
        # dbt scrubs DBT_ENV_SECRET_* values from its logs
        "DBT_ENV_SECRET_PGPASSWORD": conn.password,
        "ELT_DBT_SCHEMA": dbt_schema(),
        "ELT_PUBLISHED_SCHEMA": published_schema(),
        # dbt works as the transformer role (profiles.yml `role:`) when the roles are in use
        "ELT_DBT_ROLE": _dbt_role(),
        **_source_freshness(),
    }


def _source_freshness() -> dict[str, str]:
    """The sources' freshness thresholds for dbt (``elt.source_freshness``); none when
    pipelines.yml is missing or broken (the command that reads it reports why)."""
    path = paths.config_file()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    # every task of an orchestrated run asks for the tool environment: validate the file
    # once per content (file dates are too coarse to tell two quick edits apart)
    return dict(_freshness_of(path, text))


@functools.lru_cache(maxsize=4)
def _freshness_of(path: Path, text: str) -> tuple[tuple[str, str], ...]:
    from elt import config as elt_config  # local imports: config modules import this one
    from elt import source_freshness

    try:
        return tuple(source_freshness.env(elt_config.load(path, check_env=False)).items())
    except elt_config.ConfigError:
        return ()


def _dbt_role() -> str:
    from elt import roles  # local import: roles imports this module

    return roles.session_role(roles.TRANSFORMER) or ""


def apply_tool_env(conn: Connection | None = None) -> dict[str, str]:
    """Put :func:`tool_env` into this process's environment (for in-process dbt, dlt, GX)."""
    env = tool_env(conn)
    os.environ.update(env)
    return env


WAREHOUSE_PORT_PLACEHOLDER = "${ELT_WAREHOUSE_PORT}"
"""Stands for the embedded warehouse's port in ``.elt/env``: a URL of a database on that
server (the demo's shop) is stored with it, so it never names a port the server left."""


def embedded_port() -> str:
    """The embedded warehouse's port: ``ELT_WAREHOUSE_PORT``, else the one it keeps ("" if
    it never started). Reads a file only; starts nothing."""
    from elt import warehouse as embedded  # local import: it imports this module

    return os.environ.get("ELT_WAREHOUSE_PORT") or str(embedded.kept_port() or "")


def with_port_placeholder(url: str) -> str:
    """``url`` with the embedded warehouse's port replaced by the placeholder when the URL
    names a database on that server (else unchanged)."""
    port = "" if is_external() else embedded_port()
    parts = urlsplit(url)
    if not port or parts.hostname != "127.0.0.1" or str(parts.port) != port:
        return url
    netloc = parts.netloc.rsplit(":", 1)[0] + ":" + WAREHOUSE_PORT_PLACEHOLDER
    return parts._replace(netloc=netloc).geturl()


def load_local_env(path: Path | None = None) -> None:
    """Load ``.elt/env`` (KEY=VALUE lines) without overriding variables already set;
    the warehouse port placeholder is replaced by the port in use now."""
    path = path or paths.state_dir() / "env"
    if not path.exists():
        return
    port: str | None = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        if WAREHOUSE_PORT_PLACEHOLDER in value:
            port = embedded_port() if port is None else port
            value = value.replace(WAREHOUSE_PORT_PLACEHOLDER, port)
        os.environ.setdefault(key.strip(), value.strip())


def write_local_env(values: dict[str, str], path: Path | None = None) -> Path:
    """Merge ``values`` into ``.elt/env`` (mode 0600); used by the demo to declare its sources."""
    path = path or paths.state_dir() / "env"
    current: dict[str, str] = {}
    if path.exists():
        for raw in path.read_text().splitlines():
            if "=" in raw and not raw.lstrip().startswith("#"):
                key, value = raw.split("=", 1)
                current[key.strip()] = value.strip()
    current.update(values)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("# written by elt; secrets for local demo sources only. Never commit.\n")
        handle.writelines(f"{key}={value}\n" for key, value in sorted(current.items()))
    os.chmod(path, 0o600)
    return path
