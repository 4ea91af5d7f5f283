"""The ``sources:`` section of ``pipelines.yml``: databases, REST APIs and file sets."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from elt.config_values import (
    ColumnList,
    Duration,
    Invalid,
    Location,
    Name,
    SecretRef,
    SqlIdentifier,
    UrlOrEnv,
    did_you_mean,
)

Disposition = Literal["merge", "replace", "append"]
Contract = Literal["evolve", "freeze", "discard_row", "discard_value"]
DEFAULT_POOLS = {"database": 8, "api": 10, "file_io": 6, "cpu": 4, "memory": 2}
DEFAULT_POOL_BY_TYPE = {"sql_database": "database", "rest_api": "api", "filesystem": "file_io"}


class Strict(BaseModel):
    """Base of every config model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Retries(Strict):
    """How often and after how long a failed step is retried."""

    count: int = Field(0, ge=0)
    delay: Duration = timedelta(minutes=5)


class _Loadable(Strict):
    """Shared by tables, resources and file sets: primary key and write disposition."""

    primary_key: ColumnList = []
    write_disposition: Disposition | None = None
    # a column the source sets on rows it deleted (true, or a deletion time): those rows are
    # deleted from the raw table (dlt's hard_delete hint; merge only)
    hard_delete: SqlIdentifier | None = None
    # a primary key seen more than once in one batch (merge would keep one row of each):
    # fail the ingest, or warn and load one version; the message gives the count and examples
    duplicates: Literal["fail", "warn"] = "warn"

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
    lookback: Duration = timedelta(0)
    # rows deleted physically at the source: compare key sets and delete the vanished keys
    # from the raw table, after every load (per_run) or after the first load of a day (daily)
    reconcile: Literal["per_run", "daily"] | None = None

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


class _SourceBase(Strict):
    name: str = ""
    description: str = ""
    contract: Contract = "evolve"
    retries: Retries | None = None
    pool: str | None = None

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
    schema_: str | None = Field(None, alias="schema")
    backend: Literal["adbc", "connectorx", "pyarrow", "sqlalchemy"] = "adbc"
    chunk_size: int = Field(100_000, ge=1)
    tables: dict[Name, SqlTable] = Field(min_length=1)


class RestAuth(Strict):
    """Authentication of a REST API; secret fields must be env references."""

    type: Literal["bearer", "api_key", "http_basic"]
    token: SecretRef | None = None
    name: str = "X-API-Key"
    location: Literal["header", "query"] = "header"
    api_key: SecretRef | None = None
    username: str | None = None
    password: SecretRef | None = None

    @model_validator(mode="after")
    def _required_fields(self) -> RestAuth:
        needed = {
            "bearer": ["token"],
            "api_key": ["api_key"],
            "http_basic": ["username", "password"],
        }
        for key in needed[self.type]:
            if getattr(self, key) is None:
                raise Invalid(
                    f"auth type {self.type} needs '{key}'",
                    hint=f"add {key}: env:NAME" if key != "username" else "add username: ...",
                    key=key,
                )
        return self


_PAGINATOR_NEEDS = {
    "offset": ["limit"],
    "cursor": ["cursor_path"],
    "json_link": ["next_url_path"],
}


class Paginator(Strict):
    """How a REST API splits results into pages."""

    type: Literal["page_number", "offset", "cursor", "header_link", "json_link", "single_page"]
    page_param: str = "page"
    base_page: int = 1
    total_path: str | None = None
    offset_param: str = "offset"
    limit_param: str = "limit"
    limit: int | None = Field(None, ge=1)
    cursor_path: str | None = None
    cursor_param: str | None = None
    next_url_path: str | None = None
    maximum_page: int | None = Field(None, ge=1)

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
    param: str
    initial_value: str | None = None
    lookback: Duration = timedelta(0)


class RestResource(_Loadable):
    """One endpoint of a REST API source."""

    path: str
    data_selector: str | None = None
    params: dict[str, Any] = {}
    paginator: Paginator | None = None
    incremental: RestIncremental | None = None
    parent: str | None = None


class RestApiSource(_SourceBase):
    """A REST API read with dlt's ``rest_api`` source."""

    type: Literal["rest_api"]
    base_url: UrlOrEnv
    headers: dict[str, str] = {}
    auth: RestAuth | None = None
    paginator: Paginator | None = None
    resources: dict[Name, RestResource] = Field(min_length=1)

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
    format: Literal["csv", "jsonl", "parquet"]

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
    endpoint_url: UrlOrEnv | None = None
    files: dict[Name, FileSet] = Field(min_length=1)


Source = Annotated[
    SqlDatabaseSource | RestApiSource | FilesystemSource, Field(discriminator="type")
]
SOURCE_TYPES = ("sql_database", "rest_api", "filesystem")

__all__ = [
    "DEFAULT_POOLS",
    "DEFAULT_POOL_BY_TYPE",
    "SOURCE_TYPES",
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
