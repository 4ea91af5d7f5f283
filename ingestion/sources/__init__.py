"""dlt sources built from the ``sources:`` of pipelines.yml, one module per source type."""

from __future__ import annotations

from elt.config import DltSourceRef, FilesystemSource, RestApiSource, Source, SqlDatabaseSource
from ingestion.environment import prepare_dlt_environment
from ingestion.sources.common import BuiltSource, DataInterval
from ingestion.sources.custom import custom_source
from ingestion.sources.filesystem import filesystem_source
from ingestion.sources.rest_api import rest_api_dlt_source
from ingestion.sources.sql_database import sql_database_source

__all__ = ["BuiltSource", "DataInterval", "build_source"]


def build_source(config: Source, *, data_interval: DataInterval | None = None) -> BuiltSource:
    """The dlt source for a configured source (resolving its env references now)."""
    prepare_dlt_environment()
    if isinstance(config, SqlDatabaseSource):
        return sql_database_source(config, data_interval=data_interval)
    if isinstance(config, RestApiSource):
        return rest_api_dlt_source(config, data_interval=data_interval)
    if isinstance(config, FilesystemSource):
        return filesystem_source(config)
    if isinstance(config, DltSourceRef):
        return custom_source(config, data_interval=data_interval)
    raise TypeError(f"unknown source type {type(config).__name__}")
