"""dlt's PostgreSQL destination, with its Parquet (ADBC) load jobs sharing one ADBC database.

dlt's ADBC load job opens ``adbc_driver_postgresql.dbapi.connect(uri)`` for every file. That
creates a new ADBC *database* each time, and the PostgreSQL driver's database setup connects
once more to read the server's type catalog: ≈ 65 ms per file against ≈ 10 ms for a
connection of an existing database, paid by every 100k-row file of a load. Here each load
job's connection is an ``adbc_clone()`` of one template connection per warehouse URL (ADBC's
own way to share a database), opened on first use and closed by :func:`close_shared_databases`
when the ingest ends (the source reader of :mod:`ingestion.sources.adbc_reader` shares the
source database's the same way). Everything else is dlt's PostgreSQL destination unchanged, and it
reports the same destination type, so pipelines loaded before keep their state. Parquet comes
before CSV among its supported formats, so Arrow data with no loader format set loads as
Parquet (see :func:`_parquet_before_csv`).
"""

from __future__ import annotations

import contextlib
import copy
import threading
from typing import Any

from dlt.destinations import postgres
from dlt.destinations.impl.postgres.postgres import PostgresClient, PostgresParquetCopyJob

_lock = threading.Lock()
_templates: dict[str, Any] = {}


class SharedDatabaseParquetCopyJob(PostgresParquetCopyJob):
    """dlt's Parquet → ADBC COPY job, connecting through the shared ADBC database."""

    def _connect(self) -> Any:
        self._config = self._job_client.config
        return shared_connection(self._config.credentials.to_native_representation())


class WarehouseClient(PostgresClient):
    """dlt's PostgreSQL client whose Parquet jobs share one ADBC database."""

    def create_load_job(self, table: Any, file_path: str, load_id: str, restore: bool = False):
        """dlt's job for the file; a Parquet COPY job connects through the shared database."""
        job = super().create_load_job(table, file_path, load_id, restore)
        if type(job) is PostgresParquetCopyJob:
            return SharedDatabaseParquetCopyJob(file_path)
        return job


class warehouse(postgres):  # lower case, as dlt names its destination factories
    """``dlt.destinations.postgres`` with :class:`WarehouseClient`, its capabilities
    computed once."""

    def capabilities(self, config: Any = None, naming: Any = None) -> Any:
        """dlt's capabilities; without a config or naming they are the same for the whole
        ingest (the factory is made per ingest), yet dlt asks about a dozen times per run and
        each time resolves the destination's configuration anew: computed once, copied out."""
        if config is not None or naming is not None:
            return super().capabilities(config, naming)
        if self.__dict__.get("_capabilities") is None:
            self.__dict__["_capabilities"] = super().capabilities()
        return copy.deepcopy(self.__dict__["_capabilities"])

    def _raw_capabilities(self) -> Any:
        return _parquet_before_csv(super()._raw_capabilities())

    @property
    def client_class(self) -> type[PostgresClient]:
        """The client dlt instantiates for loads."""
        return WarehouseClient

    @property
    def destination_type(self) -> str:
        """dlt's own PostgreSQL type: state and schemas stored before stay valid."""
        return "dlt.destinations.postgres"


def _parquet_before_csv(caps: Any) -> Any:
    """Arrow data of a source without a loader format (the flat pages of a REST API) loads
    as Parquet through ADBC: dlt takes the first supported format Arrow can be written in,
    and dlt's CSV COPY comes before Parquet in PostgreSQL's list. Dict rows keep the
    preferred ``insert_values``."""
    formats = list(caps.supported_loader_file_formats)
    if "parquet" in formats and "csv" in formats:
        formats.remove("parquet")
        formats.insert(formats.index("csv"), "parquet")
    caps.supported_loader_file_formats = formats
    return caps


def shared_connection(uri: str) -> Any:
    """A new ADBC DB-API connection to ``uri`` on the process's shared ADBC database."""
    from adbc_driver_postgresql import dbapi

    with _lock:
        template = _templates.get(uri)
        if template is None:
            # autocommit: the template never holds a transaction open while the clones load
            template = _templates[uri] = dbapi.connect(uri, autocommit=True)
        return template.adbc_clone()


def close_shared_databases() -> None:
    """Close the template connections (and with the last clone, their ADBC databases)."""
    with _lock:
        templates = list(_templates.values())
        _templates.clear()
    for template in templates:
        # its server may be gone (a restart): nothing is left to release then
        with contextlib.suppress(Exception):
            template.close()
