"""The scheduled-runs benchmark's table and its own block of BENCHMARKS.md (no services)."""

from __future__ import annotations

from bench import scheduled
from bench.stats import replace_block


def _samples() -> dict[str, list[dict]]:
    return {
        "elt": [{"wall_s": 40.0, "run_s": None, "peak_mib": 500.0}] * 2,
        "airflow": [
            {"wall_s": 100.0, "run_s": 90.0, "peak_mib": 2000.0, "idle_mib": 1500.0},
            {"wall_s": 120.0, "run_s": 95.0, "peak_mib": 2100.0, "idle_mib": 1500.0},
        ],
        "prefect": [{"wall_s": 55.0, "run_s": 44.0, "peak_mib": 900.0, "idle_mib": 300.0}] * 2,
    }


def test_the_table_gives_each_variant_its_ratio_to_elt_run_and_the_target_verdict():
    table = scheduled.report(_samples(), repeats=2, years=0.1)
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines()}
    assert "| 1.00× | met |" in rows["`elt run jaffle_daily`"]
    airflow = rows["Airflow scheduler + 2 Celery workers"]
    assert "| 110 (100–120) | 2.75× | not met | 92.5 (90.0–95.0) |" in airflow
    assert "| 2,050 (2,000–2,100) | 1,500 (1,500–1,500) |" in airflow
    assert "| 1.38× | met |" in rows["Prefect server + `elt prefect worker`"]
    assert "2 round(s) after a warm-up" in table


def test_its_block_replaces_only_its_own_markers():
    document = "# Benchmarks\n\n<!-- bench:full:begin -->\nother\n<!-- bench:full:end -->\n"
    once = replace_block(document, scheduled.BLOCK, "first")
    twice = replace_block(once, scheduled.BLOCK, "second")
    assert "other" in twice and "second" in twice and "first" not in twice
    assert twice.count("<!-- bench:scheduled:begin -->") == 1
