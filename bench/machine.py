"""What the benchmarks ran on: cores, memory, CPU model, load, Python and key packages."""

from __future__ import annotations

import os
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import psutil

KEY_PACKAGES = (
    "dlt",
    "dbt-core",
    "dbt-postgres",
    "connectorx",
    "pyarrow",
    "adbc-driver-postgresql",
    "psycopg2-binary",
    "sqlalchemy",
    "pandas",
    "great-expectations",
    "apache-airflow",
    "astronomer-cosmos",
    "prefect",
    "prefect-dbt",
    "pgserver",
)


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (or the platform's guess)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def package_versions(names: tuple[str, ...] = KEY_PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` (missing ones are left out)."""
    found = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def describe() -> dict:
    """The machine, as recorded at the start of a run."""
    load1, load5, load15 = os.getloadavg()
    return {
        "cpu_model": cpu_model(),
        "cores_logical": psutil.cpu_count(logical=True),
        "cores_physical": psutil.cpu_count(logical=False),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average": [round(load1, 2), round(load5, 2), round(load15, 2)],
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "postgresql": "16 (embedded, pgserver wheel)",
        "packages": package_versions(),
    }


def load_now() -> float:
    """The 1-minute load average now."""
    return round(os.getloadavg()[0], 2)


def one_line(machine: dict) -> str:
    """A short description for the top of a results table."""
    packages = machine.get("packages", {})
    pinned = ", ".join(
        f"{name} {packages[name]}" for name in ("dlt", "dbt-core") if name in packages
    )
    load = machine.get("load_average", [0, 0, 0])
    return (
        f"{machine['cpu_model']}, {machine['cores_logical']} cores, "
        f"{machine['memory_gib']} GiB RAM, {machine['os']}, Python {machine['python']}, "
        f"PostgreSQL {machine['postgresql']}; {pinned}; load average at start "
        f"{load[0]} / {load[1]} / {load[2]} (1/5/15 min)"
    )
