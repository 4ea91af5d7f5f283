"""What every source builder shares: the built-source record and the source wrapper."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from dlt.common.schema import Schema
from dlt.common.schema.typing import TSchemaContractDict, TTableSchemaColumns
from dlt.extract import DltResource, DltSource

DataInterval = tuple[datetime, datetime]
"""The orchestrator's data interval ``(start, end)``: load rows with start <= cursor < end."""


@dataclass
class BuiltSource:
    """A dlt source ready to extract, and how to load it.

    ``loader_file_format`` is ``"parquet"`` for Arrow data (bulk load through ADBC) and None
    for the destination's default. ``secrets`` are the resolved secret values the runner must
    scrub from any error text. ``before_extract`` runs just before the extract (work shared
    by the tables, e.g. one reflection pass); ``close`` releases what the source holds;
    ``reflected`` gives a database source's tables as reflected (the drift check reads them).
    """

    source: DltSource
    loader_file_format: str | None = None
    secrets: list[str] = field(default_factory=list)
    before_extract: Callable[[], None] | None = None
    close: Callable[[], None] | None = None
    reflected: Callable[[str], Any] | None = None


def schema_contract(mode: str) -> TSchemaContractDict:
    """dlt's contract for a source's ``contract`` mode.

    The mode governs the columns and data types of the declared tables. New tables always
    evolve: the tables are the ones declared in pipelines.yml, and a frozen ``tables`` entity
    would refuse even the first load.
    """
    return {"tables": "evolve", "columns": mode, "data_type": mode}  # type: ignore[typeddict-item]


def as_source(name: str, resources: Sequence[DltResource], contract: str) -> DltSource:
    """Group ``resources`` into a dlt source named ``name`` with the schema contract applied."""
    source = DltSource(Schema(name), name, list(resources))
    source.schema_contract = schema_contract(contract)
    return source


def lag_seconds(lookback: timedelta) -> float | None:
    """dlt's ``lag`` for a lookback window; None when there is none."""
    seconds = lookback.total_seconds()
    return seconds if seconds > 0 else None


def delete_hint(column: str | None) -> TTableSchemaColumns | None:
    """Column hints marking ``column`` as dlt's ``hard_delete`` column (rows where it is true,
    or not NULL for other types, are deleted from the merged table), or None."""
    if not column:
        return None
    return {column: {"name": column, "hard_delete": True}}
