"""Export published marts to a data lake as Parquet, one partition per run date.

    result = export_models(["orders", "customers"], "s3://lake/marts", run_date=date(2026, 3, 4))

writes ``s3://lake/marts/orders/run_date=2026-03-04/orders-<run id>.parquet`` (and the same for
``customers``): the Hive-style layout that pyarrow, DuckDB, Spark and Athena read as a
``run_date`` column. The bucket is a local path (relative to the project folder), a ``file://``
URL or ``s3://bucket/prefix``; S3 credentials come from the standard AWS variables, the endpoint
from ``endpoint_url`` or ``AWS_ENDPOINT_URL`` (an S3-compatible server such as MinIO or moto).

Each table streams from PostgreSQL through ConnectorX's Arrow record-batch reader straight into
a Parquet writer, so memory stays flat whatever the table's size. Column types follow the
table's declared types: ``numeric(p,s)`` → ``decimal128(p,s)``, ``integer`` → ``int32``,
``timestamptz`` → ``timestamp[us, tz=UTC]``. An unconstrained ``numeric`` keeps ConnectorX's
``decimal128(38,10)``.

A rerun for the same run date replaces the partition: the new file is written completely
first (a local file under a ``_``-prefixed name that readers skip, then renamed; an S3 object
only appears when its upload completes), and only then are the partition's other files
removed. A failed export therefore leaves the previous files in place, never a partial file.

Why not dlt's ``filesystem`` destination: its ``layout`` can express the partition
(``{table_name}/run_date={run_date}/...`` with ``extra_placeholders``), but (checked with dlt
1.31) it writes its own ``init``, ``_dlt_loads``, ``_dlt_pipeline_state`` and ``_dlt_version``
files into the lake under an extra dataset folder; its ``replace`` truncates every partition
of a table, so a per-date replace needs our own deletion anyway; it stages every file twice
on local disk (extract, normalize) before the upload; and it keeps ConnectorX's Arrow types
(``numeric(16,2)`` arrived as ``decimal128(38,10)``). Writing with pyarrow + fsspec (s3fs, the
library dlt itself uses for S3) is shorter and gives exactly the files readers expect.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import pyarrow as pa

from elt import paths, runs, settings
from elt.config_values import did_you_mean, env_ref_name, is_env_ref, resolve_env
from elt.redact import redact

BATCH_ROWS = 100_000
"""Rows per Arrow batch and Parquet row group: bounds memory per table."""
S3_PART_BYTES = 16 * 2**20
"""S3 multipart part size: what one upload buffers in memory (S3's minimum is 5 MiB)."""

_SCHEMES = ("file", "s3")
_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_FIXED_TYPES = {
    "smallint": pa.int16(),
    "integer": pa.int32(),
    "bigint": pa.int64(),
    "real": pa.float32(),
    "double precision": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "text": pa.string(),
    "character varying": pa.string(),
    "character": pa.string(),
    "timestamp with time zone": pa.timestamp("us", tz="UTC"),
    "timestamp without time zone": pa.timestamp("us"),
}


class ExportError(RuntimeError):
    """The export cannot run or failed; the message says what and where."""


class UnknownModelError(ExportError):
    """A requested model is not a table in the published schema."""


@dataclass(frozen=True)
class Column:
    """A column of a published table, as PostgreSQL declares it."""

    name: str
    data_type: str
    precision: int | None = None
    scale: int | None = None
    nullable: bool = True


@dataclass
class ExportResult:
    """What one export wrote: the files and rows per model."""

    files: dict[str, list[str]] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    run_date: date | None = None
    location: str = ""


# -- naming ----------------------------------------------------------------------------------


def partition_path(root: str, model: str, run_date: date) -> str:
    """The folder of one model's run date: ``<root>/<model>/run_date=YYYY-MM-DD``."""
    return f"{root.rstrip('/')}/{model}/run_date={run_date.isoformat()}"


def export_file_name(model: str, run_id: str) -> str:
    """``<model>-<run id>.parquet``, with characters unsafe in object keys replaced by ``_``."""
    return f"{model}-{_UNSAFE_FILE_CHARS.sub('_', run_id)}.parquet"


def run_date_for(data_interval: tuple[datetime, datetime] | None = None) -> date:
    """The partition date: the data interval's start (Airflow's ``ds``) in UTC, else today."""
    if data_interval is None:
        return datetime.now(UTC).date()
    start = data_interval[0]
    return (start.astimezone(UTC) if start.tzinfo else start).date()


def resolve_location(to: str) -> str:
    """``to`` as a URL or absolute path: env references resolved, relative paths taken from
    the project folder; :class:`ExportError` when an optional reference is unset."""
    value = resolve_env(to)
    if value is None or not value.strip():
        name = env_ref_name(to)[0] if is_env_ref(to) else "the export location"
        raise ExportError(
            f"{name} is not set: nothing to export to. Set it to a local folder or "
            "s3://bucket/prefix (or add it to .elt/env)"
        )
    value = value.strip()
    if "://" in value:
        scheme = urlsplit(value).scheme
        if scheme not in _SCHEMES:
            raise ExportError(
                f"cannot export to {scheme}:// locations: use a local folder, file:// or s3://"
            )
        return value.rstrip("/")
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (paths.project_root() / path).resolve())


# -- Arrow types -----------------------------------------------------------------------------


def arrow_type(column: Column, fallback: pa.DataType) -> pa.DataType:
    """The Arrow type of a PostgreSQL column; ``fallback`` (the reader's type) for the rest."""
    if column.data_type == "numeric" and column.precision is not None:
        make = pa.decimal128 if column.precision <= 38 else pa.decimal256
        return make(column.precision, column.scale or 0)
    return _FIXED_TYPES.get(column.data_type, fallback)


def arrow_schema(columns: list[Column], read: pa.Schema) -> pa.Schema:
    """The file schema: the declared type and nullability of every column."""
    return pa.schema(
        pa.field(c.name, arrow_type(c, read.field(c.name).type), nullable=c.nullable)
        for c in columns
    )


# -- the warehouse side ----------------------------------------------------------------------


def published_models(url: str, schema: str) -> dict[str, list[Column]]:
    """Tables (and views) of ``schema`` with their columns in order."""
    with runs.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            "select c.table_name, c.column_name, c.data_type, c.numeric_precision,"
            " c.numeric_scale, c.is_nullable = 'YES'"
            " from information_schema.columns c join information_schema.tables t"
            " using (table_schema, table_name)"
            " where c.table_schema = %s order by c.table_name, c.ordinal_position",
            (schema,),
        )
        found: dict[str, list[Column]] = {}
        for table, *column in cur.fetchall():
            found.setdefault(table, []).append(Column(*column))
    return found


def _check_models(models: list[str], published: dict[str, list[Column]], schema: str) -> None:
    missing = [model for model in models if model not in published]
    if not missing:
        return
    available = ", ".join(sorted(published)) or "none (publish has not run yet)"
    hint = did_you_mean(missing[0], published)
    raise UnknownModelError(
        f"unknown model(s) {', '.join(missing)}: not published in schema {schema!r}"
        f"{f' ({hint})' if hint else ''}; published models: {available}. "
        "Fix export.models in pipelines.yml (or --model)"
    )


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _read(url: str, schema: str, model: str, columns: list[Column]) -> pa.RecordBatchReader:
    import connectorx as cx

    select = ", ".join(_quote(column.name) for column in columns)
    query = f"select {select} from {_quote(schema)}.{_quote(model)}"  # names are quoted
    return cx.read_sql(url, query, return_type="arrow_stream", batch_size=BATCH_ROWS)


# -- the lake side ---------------------------------------------------------------------------


def _filesystem(location: str, endpoint_url: str | None) -> tuple[Any, str]:
    """An fsspec filesystem for ``location`` and the path of the location on it."""
    import fsspec

    # a fresh instance per export: fsspec caches instances and listings otherwise
    options: dict[str, Any] = {"skip_instance_cache": True}
    endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
    if location.startswith("s3://"):
        options["use_listings_cache"] = False
        if endpoint:
            options["endpoint_url"] = endpoint
    fs, root = fsspec.core.url_to_fs(location, **options)
    if _is_local(fs):
        fs.makedirs(root, exist_ok=True)
    else:
        _check_bucket(fs, root.split("/", 1)[0], location)
    return fs, root


def _check_bucket(fs: Any, bucket: str, location: str) -> None:
    """Fail early, and clearly, when the bucket is missing or out of reach."""
    try:
        fs.call_s3("head_bucket", Bucket=bucket)
    except FileNotFoundError:
        raise ExportError(
            f"bucket {bucket!r} does not exist: create it first ({location})"
        ) from None
    except PermissionError:
        raise ExportError(
            f"access to bucket {bucket!r} denied: check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY;"
            " the export needs s3:ListBucket, s3:PutObject and s3:DeleteObject"
        ) from None
    except Exception as exc:  # botocore's connection errors are not OSErrors
        raise ExportError(
            f"cannot reach bucket {bucket!r} ({location}): {redact(str(exc))}"
        ) from None


def _is_local(fs: Any) -> bool:
    return "file" in fs.protocol


def _write_batches(out: BinaryIO, reader: pa.RecordBatchReader, schema: pa.Schema) -> int:
    import pyarrow.parquet as pq

    rows = 0
    with pq.ParquetWriter(out, schema) as writer:
        for batch in reader:
            writer.write_batch(batch.cast(schema))
            rows += batch.num_rows
    return rows


def _write_file(fs: Any, path: str, reader: pa.RecordBatchReader, schema: pa.Schema) -> int:
    """Write ``path`` so that it appears complete or not at all; returns the rows written."""
    if not _is_local(fs):
        # an fsspec transaction completes the (multipart) upload only on success
        with fs.transaction, fs.open(path, "wb", block_size=S3_PART_BYTES) as out:
            return _write_batches(out, reader, schema)
    folder, name = path.rsplit("/", 1)
    fs.makedirs(folder, exist_ok=True)
    incoming = f"{folder}/_{name}.incoming"  # readers skip names starting with "_"
    try:
        with open(incoming, "wb") as out:
            rows = _write_batches(out, reader, schema)
        os.replace(incoming, path)  # atomic within one folder
    finally:
        Path(incoming).unlink(missing_ok=True)
    return rows


def _remove_others(fs: Any, folder: str, keep: str) -> None:
    """Delete every file of the partition but ``keep``: older exports, abandoned temp files."""
    fs.invalidate_cache(folder)
    keep = fs._strip_protocol(keep)
    for entry in fs.ls(folder, detail=True):
        if entry["type"] == "file" and fs._strip_protocol(entry["name"]) != keep:
            fs.rm_file(entry["name"])


# -- the export ------------------------------------------------------------------------------


def export_models(
    models: Iterable[str],
    to: str,
    *,
    run_date: date | None = None,
    url: str | None = None,
    schema: str | None = None,
    endpoint_url: str | None = None,
    run_id: str | None = None,
) -> ExportResult:
    """Write each published model in ``models`` to ``to`` as Parquet, partitioned by run date.

    ``to`` is a local folder, ``file://`` or ``s3://bucket/prefix`` URL, or an ``env:NAME``
    reference to one. ``run_date`` defaults to today (UTC), ``url`` to the warehouse,
    ``schema`` to the published schema, ``run_id`` (the file name's suffix) to a new id.
    Rerunning for the same run date replaces the partition's files.
    """
    wanted = list(dict.fromkeys(models))
    if not wanted:
        raise ExportError("no models to export: name at least one published model")
    location = resolve_location(to)
    url = url or settings.warehouse_url()
    schema = schema or settings.published_schema()
    run_date = run_date or run_date_for()
    run_id = run_id or runs.new_run_id("export")
    published = published_models(url, schema)
    _check_models(wanted, published, schema)
    fs, root = _filesystem(location, endpoint_url)
    result = ExportResult(run_date=run_date, location=location)
    for model in wanted:
        folder = partition_path(root, model, run_date)
        path = f"{folder}/{export_file_name(model, run_id)}"
        try:
            reader = _read(url, schema, model, published[model])
            rows = _write_file(fs, path, reader, arrow_schema(published[model], reader.schema))
            _remove_others(fs, folder, keep=path)
        except Exception as exc:
            raise ExportError(
                f"export of {schema}.{model} to {location} failed: {redact(str(exc))}"
            ) from exc
        result.rows[model] = rows
        result.files[model] = [path if _is_local(fs) else fs.unstrip_protocol(path)]
    return result
