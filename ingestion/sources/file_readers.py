"""Chunked readers of CSV, JSON-lines and Parquet files listed by dlt's ``filesystem``.

They read like dlt's ``read_csv`` / ``read_jsonl`` / ``read_parquet`` (pandas chunks, line
batches, Arrow record batches), except that CSV files are read into Arrow when that loads the
same rows. A file that cannot be parsed fails with its URL and the line at fault, so the user
knows which supplier file to fix.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import dlt
from dlt.common.storages.fsspec_filesystem import FileItemDict
from dlt.extract import DltResource

from ingestion.fast_path import ROWS_PER_FILE
from ingestion.sources.csv_arrow import ColumnTypes, csv_arrow_batches
from ingestion.sources.file_errors import MalformedFileError, first_line

DEFAULT_CHUNK_ROWS = 10_000
"""Dict rows read at a time (pandas chunks, JSON lines)."""

ARROW_BATCH_ROWS = ROWS_PER_FILE
"""Rows per Arrow batch (CSV through pyarrow, Parquet): dlt's extract pays a fixed cost per
item (schema update, load-id column, writer call), ≈ 1 s per million rows in batches of 10k."""


def _csv_chunks(item: FileItemDict, chunk_rows: int) -> Iterator[list[dict[str, Any]]]:
    import pandas as pd

    with item.open(mode="rb") as handle:
        try:
            for frame in pd.read_csv(handle, chunksize=chunk_rows):
                # missing values become NULL, not NaN
                yield frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise MalformedFileError(item["file_url"], first_line(exc)) from exc


def _jsonl_chunks(item: FileItemDict, chunk_rows: int) -> Iterator[list[dict[str, Any]]]:
    rows: list[dict[str, Any]] = []
    with item.open(mode="rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise MalformedFileError(item["file_url"], f"line {number}: {exc.msg}") from exc
            if len(rows) >= chunk_rows:
                yield rows
                rows = []
    if rows:
        yield rows


def _parquet_chunks(item: FileItemDict, chunk_rows: int) -> Iterator[Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    with item.open(mode="rb") as handle:
        try:
            yield from pq.ParquetFile(handle).iter_batches(batch_size=chunk_rows)
        except pa.ArrowException as exc:
            raise MalformedFileError(item["file_url"], first_line(exc)) from exc


_CHUNKERS: dict[str, Callable[[FileItemDict, int], Iterator[Any]]] = {
    "csv": _csv_chunks,
    "jsonl": _jsonl_chunks,
    "parquet": _parquet_chunks,
}


def file_reader(
    file_format: str,
    chunk_rows: int | None = None,
    *,
    table: str | None = None,
    primary_key: Sequence[str] = (),
) -> DltResource:
    """A dlt transformer reading each listed file of ``file_format`` in chunks of
    ``chunk_rows`` (default: :data:`DEFAULT_CHUNK_ROWS` dict rows, :data:`ARROW_BATCH_ROWS`
    Arrow rows).

    CSV files of table ``table`` are read into Arrow when that loads the same rows (see
    :mod:`ingestion.sources.csv_arrow`), else as dict rows.
    """
    chunks = _CHUNKERS[file_format]
    dict_rows = chunk_rows or DEFAULT_CHUNK_ROWS
    arrow_rows = chunk_rows or ARROW_BATCH_ROWS
    if file_format == "parquet":
        dict_rows = arrow_rows

    def read_files(items: Iterable[FileItemDict]) -> Iterator[Any]:
        seen: ColumnTypes = {}  # column types of this run's earlier Arrow files
        for item in items:
            if file_format == "csv":
                batches = csv_arrow_batches(
                    item,
                    table or "",
                    primary_key,
                    seen,
                    arrow_rows,
                    lambda names, url=item["file_url"]: check_key_columns(url, names, primary_key),
                )
                if batches is not None:
                    yield from batches
                    continue
            for rows in chunks(item, dict_rows):
                if file_format == "csv" and rows:
                    check_key_columns(item["file_url"], list(rows[0]), primary_key)
                yield rows

    return dlt.transformer(read_files, name=f"read_{file_format}")


def check_key_columns(file_url: str, columns: Sequence[str], primary_key: Sequence[str]) -> None:
    """A CSV file without its primary key columns is malformed: say which, and what the
    header holds (a header read as one column is usually another delimiter)."""
    missing = [key for key in primary_key if key not in columns]
    if not missing:
        return
    found = ", ".join(columns)
    hint = ""
    if len(columns) == 1 and any(mark in columns[0] for mark in (";", "\t", "|")):
        hint = "; the header was read as one column: is the file delimited by ';', tab or '|'?"
    raise MalformedFileError(
        file_url, f"no primary key column(s) {', '.join(missing)} (header: {found}){hint}"
    )
