"""CSV files → warehouse: our ``filesystem`` ingestion vs psql ``\\copy`` of the same files."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from bench.cases import sling_peer
from bench.cases.common import (
    connection,
    count_rows,
    fresh_table,
    ingest_configured,
    libpq_env,
    psql,
    warehouse_url,
)

COLUMNS = "id text, order_id text, sku text"


def ours(params: dict) -> dict:
    """``ingestion.runner.ingest`` of a ``filesystem`` source (csv, glob over the folder)."""
    import ingestion.runner  # noqa: F401 - imported before the clock starts

    return ingest_configured(params)


def direct_copy(params: dict) -> dict:
    """One psql session: ``\\copy … from 'file' csv header`` for each file."""
    target = warehouse_url()
    files = sorted(Path(params["folder"]).glob("*.csv"))
    started = time.perf_counter()
    fresh_table(target, "bench_files_copy", "items", COLUMNS)
    command = [psql(), "-X", "-q", "-v", "ON_ERROR_STOP=1"]
    for path in files:
        command += ["-c", f"\\copy bench_files_copy.items from '{path}' with (format csv, header)"]
    subprocess.run(command, env=libpq_env(connection(target)), check=True)
    work = time.perf_counter() - started
    return {"rows": count_rows(target, "bench_files_copy", "items"), "work_s": work}


def sling(params: dict) -> dict:
    """``sling run`` of the folder's CSV files into the warehouse (full refresh)."""
    stream = ["--src-stream", f"{Path(params['folder']).as_uri()}/"]
    return sling_peer.copy_into_warehouse("items", stream, {})


VARIANTS = {"ours": ours, "direct_copy": direct_copy, "sling": sling}
