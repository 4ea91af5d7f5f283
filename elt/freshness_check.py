"""``elt freshness PIPELINE``: dbt's source freshness on the pipeline's sources, and an alert.

The thresholds are those of ``pipelines.yml`` (``elt.source_freshness`` hands them to dbt);
dbt measures each raw table's age and writes ``sources.json``, which this reads. A stale
table alerts through the pipeline's ``notify`` URLs like a run does: ``failure`` when one
passed ``error_after``, ``quality_warning`` when one passed ``warn_after``. Schedule it
(cron, an Airflow or Prefect schedule) to hear about a source that stopped delivering even
when no run starts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from elt import dbt, notify, paths
from elt import project as dbt_project
from elt.config import Pipeline, ProjectConfig

STALE = ("warn", "error", "runtime error")


@dataclass
class TableFreshness:
    """One raw table as ``dbt source freshness`` judged it."""

    source: str
    table: str
    status: str  # pass | warn | error | runtime error
    age_s: float | None
    criteria: dict[str, Any]

    def line(self) -> str:
        """``shop.orders: error, 3.0 d old (warn after 1 day, error after 2 day)``."""
        age = "age unknown" if self.age_s is None else f"{self.age_s / 86400:.1f} d old"
        limits = ", ".join(
            f"{key.replace('_', ' ')} {value['count']} {value['period']}"
            for key, value in self.criteria.items()
            if isinstance(value, dict) and value.get("count")
        )
        return f"{self.source}.{self.table}: {self.status}, {age} ({limits})"


@dataclass
class FreshnessReport(notify.RunReport):
    """The alert of a freshness check: the stale tables, nothing about loads or models."""

    def title(self) -> str:
        """One line: pipeline and what is stale."""
        return f"[elt] {self.pipeline}: sources stale ({self.status})"

    def body(self) -> str:
        """One line per stale table."""
        return "\n".join(["source freshness:", *self.failed_checks, *self.warnings])


def check(config: ProjectConfig, pipe: Pipeline) -> list[TableFreshness]:
    """Run ``dbt source freshness`` on the pipeline's sources that declare thresholds."""
    names = [s for s in pipe.sources if s in config.sources and config.sources[s].freshness]
    if not names:
        return []
    target = paths.state_dir() / "dbt-freshness" / pipe.name
    selection = ["--select", *(f"source:{name}" for name in names)]
    (target / "sources.json").unlink(missing_ok=True)  # never read an earlier check's
    outcome = dbt.invoke(
        "source freshness", selection, project=dbt_project.of(config, pipe), target_path=target
    )
    found = _read(target / "sources.json")
    if not found:
        raise RuntimeError(
            f"dbt source freshness failed: {outcome.error or 'no sources.json written'};"
            " see .elt/logs/dbt.log"
        )
    return found


def _read(path: Path) -> list[TableFreshness]:
    if not path.exists():
        return []
    found = []
    for result in json.loads(path.read_text(encoding="utf-8")).get("results", []):
        parts = result["unique_id"].split(".")  # source.<package>.<source>.<table>
        found.append(
            TableFreshness(
                source=parts[-2],
                table=parts[-1],
                status=str(result.get("status")),
                age_s=result.get("max_loaded_at_time_ago_in_s"),
                criteria=result.get("criteria") or {},
            )
        )
    return sorted(found, key=lambda t: (t.source, t.table))


def alert(pipe: Pipeline, tables: list[TableFreshness]) -> int:
    """Send one alert for the stale ``tables`` when the pipeline asks for that event;
    returns how many URLs were notified."""
    errors = [t.line() for t in tables if t.status in ("error", "runtime error")]
    warnings = [t.line() for t in tables if t.status == "warn"]
    if not errors and not warnings:
        return 0
    report = FreshnessReport(
        pipeline=pipe.name,
        run_id="source freshness",
        status="failed" if errors else "succeeded",
        duration_s=0.0,
        failed_checks=errors,
        warnings=warnings,
    )
    if report.event not in pipe.notify.on:
        return 0
    return notify.send(pipe.notify.urls, report)
