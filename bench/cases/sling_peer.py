"""sling, the Go data-movement CLI, as a peer variant of the database and files cases.

Its binary comes from the ``sling-linux-amd64`` wheel (a dev dependency), or from
``SLING_BINARY``. Connections are handed over as environment variables named on the command
line (``--src-conn BENCH_SLING_SOURCE``), so no password is on argv.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from bench import data
from bench.cases.common import count_rows, warehouse_url

SCHEMA = "bench_sling"


def binary() -> str:
    """The sling executable: ``SLING_BINARY``, else the one the wheel ships."""
    configured = os.environ.get("SLING_BINARY")
    if configured:
        return configured
    try:
        from sling_linux_amd64 import SLING_BIN
    except ImportError:
        SLING_BIN = ""
    if not SLING_BIN or not Path(SLING_BIN).exists():
        raise RuntimeError(
            "sling is not installed: run `uv sync` (dev dependency sling-linux-amd64) or set"
            " SLING_BINARY to its executable"
        )
    return SLING_BIN


def copy_into_warehouse(table: str, source: list[str], urls: dict[str, str]) -> dict:
    """``sling run`` of ``source`` (its --src-* arguments) into ``bench_sling.<table>``
    (full refresh); ``urls`` are the connections, by the variable names ``source`` uses."""
    target = warehouse_url()
    env = {
        **os.environ,
        **{name: _no_ssl(url) for name, url in urls.items()},
        "BENCH_SLING_TARGET": _no_ssl(target),
        "SLING_HOME_DIR": str(data.bench_home() / "sling"),
    }
    command = [
        binary(),
        "run",
        *source,
        "--tgt-conn",
        "BENCH_SLING_TARGET",
        "--tgt-object",
        f"{SCHEMA}.{table}",
        "--mode",
        "full-refresh",
    ]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    work = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"sling failed ({done.returncode}): {done.stderr[-2000:]}")
    return {"rows": count_rows(target, SCHEMA, table), "work_s": work}


def _no_ssl(url: str) -> str:
    """The embedded server has no TLS: tell sling not to ask for it."""
    return url + ("&" if "?" in url else "?") + "sslmode=disable"
