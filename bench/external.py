"""Adapters for the bench scripts other parts of the project own: run each as it is.

Each script does its own repeats and prints its own table; the harness times the whole
script (wall, peak RSS of its process tree) and keeps what it printed for BENCHMARKS.md, with
the verdicts of its targets when it writes them (``bench.results.write_verdicts``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from bench import data
from bench.measure import VariantFailed, run_command
from bench.results import TARGETS_FILE_ENV, read_verdicts

BENCH_DIR = Path(__file__).resolve().parent

# name → (script, arguments, what it needs)
SCRIPTS: dict[str, tuple[str, list[str], str]] = {
    "gx_vs_sql": (
        "gx_vs_sql.py",
        ["--repeat", "3"],
        "the marts of the last `elt run` in the benchmark warehouse (the e2e case)",
    ),
    "airflow_parse": ("airflow_parse.py", [], ""),
    # issue 21's `elt airflow test` vs `elt run` on the whole demo pipeline (ingest to publish)
    "airflow_e2e": (
        "airflow_parse.py",
        ["--e2e", "jaffle_daily", "--own-demo", "0.1", "--repeats", "3"],
        "its own state folder with the 0.1-year demo",
    ),
    "prefect_vs_dbt": ("prefect_vs_dbt.py", ["--repeats", "3"], "its own state folder"),
    # the same variants on the 200-model project airflow_parse.py generates (issue 21)
    "prefect_vs_dbt_generated": (
        "prefect_vs_dbt.py",
        ["--repeats", "3", "--project", "generated", "--models", "200"],
        "its own state folder",
    ),
    "scheduled": ("scheduled.py", ["--repeats", "2"], "its own state folder, Redis"),
}
# scripts that start their own warehouse in $BENCH_HOME
OWN_HOME = {"prefect_vs_dbt", "prefect_vs_dbt_generated", "airflow_e2e", "scheduled"}


def script_env(name: str, env: dict[str, str]) -> dict[str, str]:
    """The script's environment: the suite's, or for a script with its own state folder
    (``<bench home>/<name>``) the suite's without the harness's tool homes and warehouse."""
    if name not in OWN_HOME:
        return env
    from elt import settings

    home = str(data.bench_home() / name)
    inherited = {key: value for key, value in env.items() if key not in settings.tool_env()}
    return {**inherited, "BENCH_HOME": home, "ELT_HOME": home}


def run_script(name: str, env: dict[str, str]) -> dict[str, Any]:
    """Run ``bench/<script>`` once; a missing script is recorded as skipped, not failed."""
    script, args, needs = SCRIPTS[name]
    path = BENCH_DIR / script
    record: dict[str, Any] = {
        "id": name,
        "group": "external",
        # a script run twice with other arguments is told apart by its case name
        "title": f"bench/{script}" + ("" if name == path.stem else f" ({name})"),
        "command": f".venv/bin/python bench/{script} {' '.join(args)}".strip(),
        "needs": needs,
    }
    if not path.exists():
        record["skipped"] = f"bench/{script} does not exist yet"
        return record
    verdicts = data.bench_home() / f"{name}.targets.json"
    verdicts.unlink(missing_ok=True)
    try:
        command = [sys.executable, str(path), *args]
        script = {**script_env(name, env), TARGETS_FILE_ENV: str(verdicts)}
        sample, stdout = run_command(command, script, cwd=BENCH_DIR.parent)
    except VariantFailed as exc:
        record["error"] = str(exc)[-3000:]
        return record
    record.update(wall_s=sample.wall_s, peak_rss_mib=sample.peak_rss_mib, stdout=stdout)
    record["verdicts"] = read_verdicts(verdicts)
    return record
