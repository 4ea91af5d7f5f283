"""Duplicate primary keys inside one batch, found before the load merges them into one row.

A source whose key constraint was dropped can send a key twice in one extract; dlt's merge
keeps one row per key and says nothing. After normalize, the key columns of each checked
table are read from the package's Parquet files (key columns only) and grouped; a key seen
twice is reported with the count and a few examples. Tables loaded from other file formats
(the dict path of REST APIs) are not checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

EXAMPLES = 3


@dataclass
class Duplicates:
    """Keys seen more than once in a table's batch: how many keys, how many rows, examples."""

    table: str
    keys: int
    rows: int
    examples: list[dict[str, Any]] = field(default_factory=list)

    def describe(self) -> str:
        """``3 key(s) appear more than once (7 rows), e.g. id=5, id=9``."""
        shown = ", ".join(
            " ".join(f"{name}={value!r}" for name, value in example.items())
            for example in self.examples
        )
        return f"{self.keys} key(s) appear more than once ({self.rows} rows), e.g. {shown}"


def find_duplicates(pipeline: Any, keys: dict[str, list[str]]) -> list[Duplicates]:
    """Duplicated keys per table in the pipeline's normalized packages; ``keys`` maps dlt
    table names to their (dlt) key column names."""
    files: dict[str, list[str]] = {}
    for load_id in pipeline.list_normalized_load_packages():
        package = pipeline.get_load_package_info(load_id)
        for job in package.jobs.get("new_jobs", []):
            info = job.job_file_info
            if info.table_name in keys and info.file_format == "parquet":
                files.setdefault(info.table_name, []).append(job.file_path)
    found = []
    for table, paths in files.items():
        duplicates = _duplicates(table, paths, keys[table])
        if duplicates:
            found.append(duplicates)
    return found


def _duplicates(table: str, paths: list[str], key: list[str]) -> Duplicates | None:
    batch = pa.concat_tables(pq.read_table(path, columns=key) for path in paths)
    counts = batch.group_by(key).aggregate([([], "count_all")])
    repeated = counts.filter(pc.greater(counts["count_all"], 1))
    if not repeated.num_rows:
        return None
    return Duplicates(
        table=table,
        keys=repeated.num_rows,
        rows=pc.sum(repeated["count_all"]).as_py(),
        examples=repeated.select(key).slice(0, EXAMPLES).to_pylist(),
    )


def key_policies(source: Any) -> dict[str, tuple[list[str], str]]:
    """dlt table name → (dlt key columns, ``fail``/``warn``) of every keyed table, resource
    or file set of a configured source."""
    from dlt.common.normalizers.naming.snake_case import NamingConvention

    naming = NamingConvention()
    items = getattr(source, "tables", None) or getattr(source, "resources", None) or {}
    items = items or getattr(source, "files", None) or {}
    return {
        naming.normalize_table_identifier(name): (
            [naming.normalize_identifier(column) for column in item.primary_key],
            item.duplicates,
        )
        for name, item in items.items()
        if item.primary_key
    }
