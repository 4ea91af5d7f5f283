"""Load one configured source into the warehouse dataset ``raw_<source>`` with dlt.

    result = ingest(config.sources["shop"])            # IngestResult, or IngestError

One dlt pipeline per source (``elt_<source>``), its working folder under ``DLT_DATA_DIR``.
Each run: sync state with the warehouse → finish (or drop) a package a crashed run left
behind → extract → normalize → load. Arrow data gets ``_dlt_load_id`` like every other row, so
the load id can flow through dbt, and takes the fast path of :mod:`ingestion.fast_path`.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import dlt
from dlt.common.pipeline import LoadInfo

from elt import roles, settings
from elt.config import RestApiSource, Source, SqlDatabaseSource, resolve_env
from ingestion.drift import apply_drift, read_in_full
from ingestion.duplicates import ItemKeys, count_item_keys, find_duplicates, key_policies
from ingestion.environment import prepare_dlt_environment
from ingestion.errors import IngestError, explain, scrub
from ingestion.fast_path import (
    ARROW_NORMALIZER,
    as_environment,
    dlt_settings,
    keep_row_ids,
    tables_with_row_ids,
)
from ingestion.reconcile import reconcile_deletes
from ingestion.reset import reset_source
from ingestion.sources import BuiltSource, DataInterval, build_source
from ingestion.warehouse_destination import close_shared_databases, warehouse

Progress = Callable[[str], None]

__all__ = ["ARROW_NORMALIZER", "IngestError", "IngestResult", "ingest"]

# dlt warns once per Arrow batch that reflected types win over Arrow's (that is intended)
_NOISY_WARNINGS = ("when merging arrow schema with dlt schema",)

log = logging.getLogger("ingestion")


@dataclass
class IngestResult:
    """What one ingest of a source did: rows per table loaded in this run, load ids, time,
    per table the file format and the number of files (load jobs) it was loaded from, and
    the raw rows deleted because their keys vanished from the source (``reconcile:``)."""

    source: str
    dataset: str
    load_ids: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    duration_s: float = 0.0
    status: Literal["succeeded", "failed"] = "succeeded"
    file_formats: dict[str, str] = field(default_factory=dict)
    jobs: dict[str, int] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)  # by key reconciliation
    duplicates: dict[str, int] = field(default_factory=dict)  # keys seen twice in the batch


def pipeline_name(source: Source) -> str:
    """The dlt pipeline of a source (``elt_<source>``)."""
    return f"elt_{source.name}"


def pipelines_dir() -> Path:
    """Where dlt keeps pipeline working folders (state, schemas, pending packages):
    under ``DLT_DATA_DIR`` (from the environment, else ``.elt/dlt``)."""
    data_dir = os.environ.get("DLT_DATA_DIR") or settings.tool_homes()["DLT_DATA_DIR"]
    return Path(data_dir) / "pipelines"


def ingest(
    source: Source,
    *,
    full_refresh: bool = False,
    destination_url: str | None = None,
    data_interval: DataInterval | None = None,
    progress: Progress | None = None,
) -> IngestResult:
    """Extract ``source`` and load it into ``raw_<source>``; raises :class:`IngestError`.

    ``full_refresh`` first drops the source's raw and staging schemas and its local and
    destination state (:mod:`ingestion.reset`).
    ``destination_url`` defaults to the warehouse; ``data_interval`` (start, end) limits
    incremental tables to the orchestrator's window; ``progress`` receives one-line updates.
    """
    if not source.name:
        raise ValueError("the source has no name (load it with elt.config.load())")
    say = progress or (lambda _message: None)
    result = IngestResult(source=source.name, dataset=source.dataset)
    started = time.monotonic()
    secrets: list[str] = []
    built: BuiltSource | None = None
    prepare_dlt_environment()
    try:
        with _pipeline_lock(source), _quiet_dlt_warnings(), _fast_path_settings():
            built = build_source(source, data_interval=data_interval)
            secrets = built.secrets
            destination = destination_url or settings.warehouse_url()
            # dlt works as the least-privilege loader role when the roles are in use
            loader = roles.loader_url(destination)
            pipeline = _pipeline(source, loader)
            if full_refresh:
                say(
                    f"{source.name}: full refresh: dropping {source.dataset}, its staging"
                    " schema and the pipeline's state"
                )
                pipeline = reset_source(pipeline, loader)
            else:
                say(f"{source.name}: syncing state with the warehouse")
                pipeline.sync_destination()
                if isinstance(source, SqlDatabaseSource):
                    grown = apply_drift(pipeline, source, loader, say, built.reflected)
                    if grown:  # read in full this once, for their new columns
                        _close(built)
                        built = build_source(
                            read_in_full(source, grown), data_interval=data_interval
                        )
            keys = key_policies(source)
            _run(pipeline, built, result, keys=keys, full_refresh=full_refresh, say=say)
            if isinstance(source, SqlDatabaseSource):
                url = resolve_env(source.credentials) or ""
                result.deleted = reconcile_deletes(source, url, loader, say=say)
    except IngestError as exc:
        result.status = "failed"
        exc.result = result
        raise
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # also connectorx's Rust panics, which are not Exceptions
        result.status = "failed"
        error = explain(exc, source=source.name, secret_ref=_ref(source), secrets=secrets)
        error.result = result
        log.debug("ingest of %s failed: %s", source.name, error)
        raise error from None  # the original may quote a URL with a password
    finally:
        _close(built)
        close_shared_databases()
        result.duration_s = round(time.monotonic() - started, 3)
    say(f"{source.name}: {sum(result.rows.values()):,} rows in {result.duration_s:.1f} s")
    return result


def _run(
    pipeline: dlt.Pipeline,
    built: BuiltSource,
    result: IngestResult,
    *,
    keys: dict[str, tuple[list[str], str]],
    full_refresh: bool,
    say: Progress,
) -> None:
    name = result.source
    _settle_pending(pipeline, result, discard=full_refresh, say=say)
    if not full_refresh and built.loader_file_format == "parquet":
        _keep_existing_row_ids(pipeline, built, say)
    for resource in built.source.selected_resources.values():
        table = resource.table_name
        result.rows.setdefault(table if isinstance(table, str) else resource.name, 0)
    say(f"{name}: extracting" + (" (full refresh)" if full_refresh else ""))
    if built.before_extract:
        built.before_extract()
    counters = (  # dlt's dict path leaves no Parquet files to read keys back from
        []
        if built.loader_file_format == "parquet"
        else count_item_keys(built.source.selected_resources.values(), keys)
    )
    pipeline.extract(
        built.source,
        refresh="drop_sources" if full_refresh else None,
        loader_file_format=built.loader_file_format,  # type: ignore[arg-type]
    )
    say(f"{name}: normalizing")
    _count_rows(pipeline.normalize(), result)
    _check_duplicates(pipeline, keys, result, say, counted=counters)
    say(f"{name}: loading into {result.dataset}")
    info = pipeline.load()
    _record_load(info, result)
    _check_file_format(result, built.loader_file_format, say)


def _close(built: BuiltSource | None) -> None:
    """Release what the built source holds (its database engine)."""
    if built is not None and built.close:
        built.close()


def _check_duplicates(
    pipeline: dlt.Pipeline,
    policies: dict[str, tuple[list[str], str]],
    result: IngestResult,
    say: Progress,
    *,
    counted: list[ItemKeys],
) -> None:
    """Report keys seen twice in this batch before the merge collapses them: a warning, or
    (``duplicates: fail``) an error that drops the batch, so nothing of it loads."""
    # tables counted as dict items are not read back again from their Arrow pages' Parquet
    tables = {counter.table for counter in counted}
    found = find_duplicates(
        pipeline, {table: keys for table, (keys, _) in policies.items() if table not in tables}
    )
    found += [dup for dup in (counter.found() for counter in counted) if dup]
    for duplicates in found:
        result.duplicates[duplicates.table] = duplicates.keys
        if policies[duplicates.table][1] == "fail":
            pipeline.abort_packages()  # the batch, and the cursor state it carries
            raise IngestError(
                f"ingest of source '{result.source}' failed at table '{duplicates.table}': "
                f"{duplicates.describe()} in this batch; merge would keep one row of each. "
                "Nothing was loaded. Fix the keys at the source, or set duplicates: warn on "
                "the table to load one row per key",
                source=result.source,
                table=duplicates.table,
                step="normalize",
            )
        message = (
            f"{result.source}: table {duplicates.table}: {duplicates.describe()} in this "
            "batch; one row per key is loaded"
        )
        log.warning(message)
        say(f"warning: {message}")


def _settle_pending(
    pipeline: dlt.Pipeline, result: IngestResult, *, discard: bool, say: Progress
) -> None:
    """Finish the package an interrupted run left behind (its rows belong to the last
    extract, whose cursor state travels with it); drop it when it cannot be loaded."""
    if not pipeline.has_pending_data:
        return
    if not discard:
        say(f"{result.source}: finishing the load an interrupted run left behind")
        try:
            pipeline.normalize()
            info = pipeline.load()
            _record_load(info, result)
            # counted in the warehouse: a package normalized before the crash has no counts
            _count_loaded_rows(pipeline, info, result)
            return
        except Exception as exc:
            reason = scrub(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            say(f"{result.source}: the interrupted load cannot be finished ({reason}); dropping it")
            result.rows.clear()
            result.load_ids.clear()
    # abort restores the local state (incremental cursors) to before the dropped package
    pipeline.abort_packages()


def _keep_existing_row_ids(pipeline: dlt.Pipeline, built: BuiltSource, say: Progress) -> None:
    """Tables loaded with a NOT NULL ``_dlt_id`` (by an earlier version) keep getting one;
    ``--full-refresh`` recreates them without it."""
    name = built.source.schema.name
    if name not in pipeline.schema_names:
        return
    tables = tables_with_row_ids(built.source, pipeline.schemas[name].tables)
    if tables:
        keep_row_ids(built.source, tables)
        say(f"{name}: {', '.join(tables)} keep their _dlt_id column (they were loaded with it)")


def _count_rows(info: Any, result: IngestResult) -> None:
    for table, count in (getattr(info, "row_counts", None) or {}).items():
        if not table.startswith("_dlt"):
            result.rows[table] = result.rows.get(table, 0) + count


def _count_loaded_rows(pipeline: dlt.Pipeline, info: LoadInfo, result: IngestResult) -> None:
    """Add the rows each finished package loaded, per table, counted by its load id."""
    with pipeline.sql_client() as client:
        for package in info.load_packages:
            tables = {
                job.job_file_info.table_name
                for job in package.jobs.get("completed_jobs", [])
                if not job.job_file_info.table_name.startswith("_dlt")
            }
            for table in sorted(tables):
                if "_dlt_load_id" not in pipeline.schemas[package.schema_name].get_table_columns(
                    table
                ):
                    continue  # nested tables carry the root's load id only through the root
                name = client.make_qualified_table_name(table)
                found = client.execute_sql(
                    f"select count(*) from {name} where _dlt_load_id = %s", package.load_id
                )
                result.rows[table] = result.rows.get(table, 0) + int(found[0][0])


def _record_load(info: LoadInfo, result: IngestResult) -> None:
    result.load_ids.extend(load_id for load_id in info.loads_ids if load_id not in result.load_ids)
    for package in info.load_packages:
        for job in package.jobs.get("completed_jobs", []):
            table, file_format = job.job_file_info.table_name, job.job_file_info.file_format
            if not table.startswith("_dlt") and file_format != "sql":
                result.file_formats[table] = file_format
                result.jobs[table] = result.jobs.get(table, 0) + 1


def _check_file_format(result: IngestResult, wanted: str | None, say: Progress) -> None:
    """A Parquet load that silently fell back to another format (no ADBC driver) is slow."""
    if not wanted:
        return
    other = {table: fmt for table, fmt in result.file_formats.items() if fmt != wanted}
    if other:
        message = (
            f"{result.source}: loaded {', '.join(sorted(other))} as "
            f"{', '.join(sorted(set(other.values())))} instead of {wanted}; "
            "is adbc-driver-postgresql installed?"
        )
        log.warning(message)
        say(message)


def _pipeline(source: Source, destination_url: str) -> dlt.Pipeline:
    return dlt.pipeline(
        pipeline_name=pipeline_name(source),
        pipelines_dir=str(pipelines_dir()),
        destination=warehouse(credentials=destination_url),
        dataset_name=source.dataset,
    )


def _ref(source: Source) -> str | None:
    """The env reference holding the source's secret, named in error hints."""
    if isinstance(source, SqlDatabaseSource):
        return source.credentials
    if isinstance(source, RestApiSource) and source.auth:
        return next(iter(source.auth.secret_refs), None)
    return None


@contextmanager
def _fast_path_settings() -> Iterator[None]:
    # A process that ingests from several threads (Prefect) pins the settings in the
    # environment first: then none is written here, since dlt's config provider is one
    # document per process and two threads writing it race (KeyAlreadyPresent)
    if all(os.environ.get(key) == value for key, value in as_environment().items()):
        yield
        return
    with dlt.config.values(dlt_settings()):
        yield


@contextmanager
def _pipeline_lock(source: Source) -> Iterator[None]:
    """One ingest per source at a time: two would corrupt the pipeline's working folder."""
    folder = pipelines_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{pipeline_name(source)}.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IngestError(
                f"ingest of source '{source.name}' is already running in another process; "
                "wait for it to finish",
                source=source.name,
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(noise in message for noise in _NOISY_WARNINGS)


@contextmanager
def _quiet_dlt_warnings() -> Iterator[None]:
    dlt_logger = logging.getLogger("dlt")
    noise = _DropNoise()
    dlt_logger.addFilter(noise)
    try:
        yield
    finally:
        dlt_logger.removeFilter(noise)
