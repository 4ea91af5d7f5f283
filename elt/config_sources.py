"""The ``sources:`` section of ``pipelines.yml``: databases, REST APIs and file sets."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from elt.config_values import (
    Arguments,
    ColumnList,
    Duration,
    Headers,
    Invalid,
    Location,
    Name,
    Params,
    Reference,
    SecretRef,
    SqlIdentifier,
    StrList,
    UrlOrEnv,
    did_you_mean,
)

Disposition = Literal["merge", "replace", "append"]
Contract = Literal["evolve", "freeze", "discard_row", "discard_value"]
DEFAULT_POOLS = {"database": 8, "api": 10, "file_io": 6, "cpu": 4, "memory": 2}
DEFAULT_POOL_BY_TYPE = {
    "sql_database": "database",
    "rest_api": "api",
    "filesystem": "file_io",
    "dlt": "api",
}


class Strict(BaseModel):
    """Base of every config model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, use_attribute_docstrings=True)


class Retries(Strict):
    """How often and after how long a failed step is retried."""

    count: int = Field(0, ge=0)
    """Retries after the first attempt."""
    delay: Duration = timedelta(minutes=5)
    """Wait between attempts."""


class _Loadable(Strict):
    """Shared by tables, resources and file sets: primary key and write disposition."""

    primary_key: ColumnList = []
    """Column(s) identifying a row; with a key the default write disposition is merge."""
    write_disposition: Disposition | None = None
    """merge (upsert on primary_key), replace (reload the table) or append; default: merge with a
    primary_key, else replace (append for file sets)."""
    hard_delete: SqlIdentifier | None = None
    """Column the source sets on rows it deleted (true, or a deletion time): those rows are
    deleted from the raw table (dlt's hard_delete hint; merge only)."""
    duplicates: Literal["fail", "warn"] = "warn"
    """A primary key seen more than once in one batch (merge would keep one row of each): fail
    the ingest, or warn and load one version; the message gives the count and examples.
    Checked for rows loaded as Parquet (database tables, CSV and Parquet files), not REST rows."""

    @property
    def disposition(self) -> Disposition:
        """The explicit write disposition, else merge with a primary key, else replace."""
        if self.write_disposition:
            return self.write_disposition
        return "merge" if self.primary_key else "replace"

    @model_validator(mode="after")
    def _merge_needs_key(self) -> _Loadable:
        if self.write_disposition == "merge" and not self.primary_key:
            raise Invalid(
                "write_disposition merge needs a primary_key",
                hint="add primary_key: <column> or use write_disposition: append / replace",
                key="write_disposition",
            )
        if self.hard_delete and self.disposition != "merge":
            raise Invalid(
                "hard_delete needs write_disposition merge (rows are deleted by primary key)",
                hint="add primary_key: <column>",
                key="hard_delete",
            )
        return self


class SqlTable(_Loadable):
    """One table of a database source."""

    cursor: SqlIdentifier | None = None
    """Column whose largest value loaded is remembered: the next run reads only newer rows."""
    lookback: Duration = timedelta(0)
    """Re-read this far behind the cursor, to catch rows committed late."""
    reconcile: Literal["per_run", "daily"] | None = None
    """Rows deleted physically at the source: compare key sets and delete the vanished keys
    from the raw table, after every load (per_run) or after the first load of a day (daily)."""

    @model_validator(mode="after")
    def _cursor_needs_incremental(self) -> SqlTable:
        if self.cursor and self.disposition == "replace":
            raise Invalid(
                "a cursor is useless with write_disposition replace",
                hint="add a primary_key (merge) or use write_disposition: append",
                key="cursor",
            )
        if self.reconcile and self.disposition != "merge":
            raise Invalid(
                "reconcile needs write_disposition merge (vanished rows are found by key)",
                hint="add primary_key: <column>",
                key="reconcile",
            )
        return self


class Freshness(Strict):
    """How old data may get: older than ``warn_after`` warns, older than ``error_after`` fails.

    The portal colours sources and marts with it (in the browser, so the age is current).
    """

    warn_after: Duration
    """Older than this (e.g. 12h, 1d): stale, warn."""
    error_after: Duration | None = None
    """Older than this: stale, error."""

    @model_validator(mode="after")
    def _error_after_warn(self) -> Freshness:
        if self.error_after is not None and self.error_after < self.warn_after:
            raise Invalid(
                "freshness error_after is shorter than warn_after",
                hint="make error_after at least warn_after, e.g. {warn_after: 1d, error_after: 2d}",
                key="error_after",
            )
        return self


class _SourceBase(Strict):
    name: str = ""
    description: str = ""
    """Free text, shown in docs."""
    contract: Contract = "evolve"
    """What a new column or data type does: evolve (accepted), freeze (the load fails),
    discard_row, discard_value."""
    retries: Retries | None = None
    """Retries of this source's ingest step (default: the pipeline's)."""
    pool: str | None = None
    """Pool its ingest step runs in (default by type: database, api, file_io)."""
    pool_slots: int = Field(1, ge=1)
    """Slots of the pool one ingest of this source takes (a heavy source can take several)."""
    freshness: Freshness | None = None
    """How old the source's raw tables may get: the portal's freshness status and the
    thresholds of `dbt source freshness` (its `__sources.yml` reads them, see
    elt/source_freshness.py)."""

    @property
    def dataset(self) -> str:
        """The raw schema this source loads into."""
        return f"raw_{self.name}"

    @property
    def pool_name(self) -> str:
        """The declared pool, else the default pool of the source type."""
        return self.pool or DEFAULT_POOL_BY_TYPE[self.type]  # type: ignore[attr-defined]


class SqlDatabaseSource(_SourceBase):
    """A database read with dlt's ``sql_database`` source."""

    type: Literal["sql_database"]
    credentials: SecretRef
    """SQLAlchemy URL of the database, e.g. env:SHOP_DB_URL."""
    schema_: str | None = Field(None, alias="schema")
    """Schema the tables are in (default: the database's default)."""
    backend: Literal["adbc", "connectorx", "pyarrow", "sqlalchemy"] = "adbc"
    """Reader: adbc (fastest), connectorx, pyarrow or sqlalchemy."""
    chunk_size: int = Field(100_000, ge=1)
    """Rows per batch read."""
    tables: dict[Name, SqlTable] = Field(min_length=1)
    """Tables to load, by name."""


_AUTH_NEEDS = {
    "bearer": ["token"],
    "api_key": ["api_key"],
    "http_basic": ["username", "password"],
    "oauth2_client_credentials": ["token_url", "client_id", "client_secret"],
}
_AUTH_HINTS = {
    "api_key": "add api_key: env:NAME, with name: <header, parameter or cookie name> and "
    "location: header | query | cookie",
    "username": "add username: ... (or env:NAME)",
    "token_url": "add token_url: https://… (the OAuth2 token endpoint, or env:NAME)",
}


class RestAuth(Strict):
    """Authentication of a REST API; secret fields must be env references.

    ``bearer`` sends ``Authorization: <scheme> <token>``; ``api_key`` sends the key as header,
    query parameter or cookie ``name``; ``http_basic`` sends username and password;
    ``oauth2_client_credentials`` gets a token from ``token_url`` with the client id and
    secret, and gets a new one before it expires.
    """

    type: Literal["bearer", "api_key", "http_basic", "oauth2_client_credentials"]
    token: SecretRef | None = None
    """bearer: the token."""
    scheme: str = Field("Bearer", pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")
    """bearer: the word before the token (Authorization: <scheme> <token>), e.g. token."""
    name: str = "X-API-Key"
    """api_key: name of the header, query parameter or cookie."""
    location: Literal["header", "query", "cookie"] = "header"
    """api_key: where the key goes."""
    api_key: SecretRef | None = None
    """api_key: the key."""
    username: str | None = None
    """http_basic: the user (literal or env:NAME)."""
    password: SecretRef | None = None
    """http_basic: the password."""
    token_url: UrlOrEnv | None = None
    """oauth2_client_credentials: the token endpoint."""
    client_id: SecretRef | None = None
    """oauth2_client_credentials: the client id."""
    client_secret: SecretRef | None = None
    """oauth2_client_credentials: the client secret."""
    scopes: StrList = []
    """oauth2_client_credentials: scopes asked for (sent as scope)."""

    @model_validator(mode="after")
    def _required_fields(self) -> RestAuth:
        for key in _AUTH_NEEDS[self.type]:
            if getattr(self, key) is None:
                raise Invalid(
                    f"auth type {self.type} needs '{key}'",
                    hint=_AUTH_HINTS.get(key, f"add {key}: env:NAME"),
                    key=key,
                )
        return self

    @property
    def secret_refs(self) -> list[str]:
        """The env references of this auth's secrets."""
        refs = (self.token, self.api_key, self.password, self.client_id, self.client_secret)
        return [ref for ref in refs if ref]


_PAGINATOR_NEEDS = {
    "offset": ["limit"],
    "cursor": ["cursor_path"],
    "json_link": ["next_url_path"],
}


class Paginator(Strict):
    """How a REST API splits results into pages."""

    type: Literal["page_number", "offset", "cursor", "header_link", "json_link", "single_page"]
    """page_number, offset, cursor (from the body), header_link (Link: rel=next), json_link (next
    URL in the body) or single_page."""
    page_param: str = "page"
    """page_number: query parameter of the page."""
    base_page: int = 1
    """page_number: number of the first page."""
    total_path: str | None = None
    """page_number, offset: JSON path of the total (pages or items); without it, paging stops at an
    empty page."""
    offset_param: str = "offset"
    """offset: query parameter of the offset."""
    limit_param: str = "limit"
    """offset: query parameter of the page size."""
    limit: int | None = Field(None, ge=1)
    """offset: page size."""
    cursor_path: str | None = None
    """cursor: JSON path of the next cursor in the body."""
    cursor_param: str | None = None
    """cursor: query parameter the cursor is sent as."""
    next_url_path: str | None = None
    """json_link: JSON path of the next page's URL."""
    maximum_page: int | None = Field(None, ge=1)
    """page_number: stop after this page."""

    @model_validator(mode="after")
    def _required_fields(self) -> Paginator:
        for key in _PAGINATOR_NEEDS.get(self.type, []):
            if getattr(self, key) is None:
                raise Invalid(
                    f"paginator type {self.type} needs '{key}'", hint=f"add {key}: ...", key=key
                )
        return self


class RestIncremental(Strict):
    """Incremental loading of a REST resource by a cursor field sent as a query parameter."""

    cursor_path: str
    """JSON path of the field whose largest value is remembered."""
    param: str
    """Query parameter the last value is sent as."""
    initial_value: str | None = None
    """Value sent on the first run."""
    lookback: Duration = timedelta(0)
    """Send the last value minus this, to catch late updates."""


class RestResource(_Loadable):
    """One endpoint of a REST API source."""

    path: UrlOrEnv
    """Path under base_url; with a parent, {field} reads the parent's rows."""
    data_selector: str | None = None
    """JSON path of the list of rows in the body (default: found by dlt)."""
    params: Params = {}
    """Query parameters; credentials must be env:NAME."""
    paginator: Paginator | None = None
    """Paging of this resource (default: the source's)."""
    incremental: RestIncremental | None = None
    """Load only rows newer than the last run."""
    parent: str | None = None
    """Resource whose rows fill the {field} placeholders of path."""


class RestApiSource(_SourceBase):
    """A REST API read with dlt's ``rest_api`` source."""

    type: Literal["rest_api"]
    base_url: UrlOrEnv
    """Root URL of the API, e.g. env:EVENTS_API_URL."""
    headers: Headers = {}
    """Extra headers; credentials must be env:NAME."""
    auth: RestAuth | None = None
    """How requests authenticate."""
    paginator: Paginator | None = None
    """Default paging of every resource."""
    resources: dict[Name, RestResource] = Field(min_length=1)
    """Endpoints to load, by table name."""

    @model_validator(mode="after")
    def _parents_exist(self) -> RestApiSource:
        parents = {name: resource.parent for name, resource in self.resources.items()}
        for resource, message, hint in parent_problems(parents):
            raise Invalid(message, hint=hint, key=f"resources.{resource}.parent")
        return self


def parent_problems(parents: dict[str, Any]) -> list[tuple[str, str, str]]:
    """``(resource, message, hint)`` for unknown parents and parent cycles among resources."""
    problems = []
    for name, parent in parents.items():
        if parent is not None and parent not in parents:
            hint = did_you_mean(parent, parents) or f"parent must be one of: {', '.join(parents)}"
            problems.append((name, f"resource '{name}' has unknown parent '{parent}'", hint))
    reported: set[frozenset[str]] = set()
    for name in parents:
        cycle = _parent_cycle(parents, name)
        if cycle and frozenset(cycle) not in reported:
            reported.add(frozenset(cycle))
            message = f"resource parents form a cycle: {' -> '.join(cycle)}"
            problems.append((name, message, "a child resource cannot be its own ancestor"))
    return problems


def _parent_cycle(parents: dict[str, Any], start: str) -> list[str] | None:
    chain = [start]
    current = parents[start]
    while current in parents:
        if current in chain:
            return [*chain[chain.index(current) :], current]
        chain.append(current)
        current = parents[current]
    return None


class FileSet(_Loadable):
    """Files matching a glob inside a filesystem source."""

    glob: str
    """Files to read, relative to bucket_url, e.g. supplies/*.csv."""
    format: Literal["csv", "jsonl", "parquet"]
    """csv, jsonl or parquet."""

    @property
    def disposition(self) -> Disposition:
        """The explicit write disposition, else merge with a primary key, else append."""
        if self.write_disposition:
            return self.write_disposition
        return "merge" if self.primary_key else "append"


class FilesystemSource(_SourceBase):
    """Files in a local folder or a bucket, read with dlt's ``filesystem`` source."""

    type: Literal["filesystem"]
    bucket_url: Location
    """Local folder or file://, s3://, gs://, az:// URL (or env:NAME)."""
    endpoint_url: UrlOrEnv | None = None
    """S3-compatible endpoint (MinIO, moto…)."""
    files: dict[Name, FileSet] = Field(min_length=1)
    """File sets to load, by table name."""


class DltSourceRef(_SourceBase):
    """Any dlt source by reference: a team's own ``@dlt.source`` (e.g. in
    ``ingestion/custom/``) or a dlt verified source, called with ``args``."""

    type: Literal["dlt"]
    source: Reference
    """The dlt source function: package.module:function."""
    args: Arguments = {}
    """Keyword arguments of the function (values or env:NAME; credentials must be env:NAME)."""
    resources: StrList = []
    """Load only these resources of the source (default: all)."""


Source = Annotated[
    SqlDatabaseSource | RestApiSource | FilesystemSource | DltSourceRef,
    Field(discriminator="type"),
]
SOURCE_TYPES = ("sql_database", "rest_api", "filesystem", "dlt")

__all__ = [
    "DEFAULT_POOLS",
    "DEFAULT_POOL_BY_TYPE",
    "SOURCE_TYPES",
    "DltSourceRef",
    "FileSet",
    "FilesystemSource",
    "Paginator",
    "RestApiSource",
    "RestAuth",
    "RestIncremental",
    "RestResource",
    "Retries",
    "Source",
    "SqlDatabaseSource",
    "SqlTable",
    "Strict",
]
