"""Prefect artifacts of a run: a markdown summary and a table of the quality results.

The content comes from the same :class:`elt.steps.RunResult` that ``elt run`` prints and the
notification reports, so the UI, the alert and the terminal tell the same story.
"""

from __future__ import annotations

import re

from elt import dbt
from elt.redact import redact
from elt.steps import RunResult

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_QUALITY_TYPES = ("test", "unit_test")
MESSAGE_CHARS = 300


def artifact_key(pipeline: str, kind: str) -> str:
    """An artifact key (lowercase letters, digits and dashes), stable per pipeline and kind."""
    return re.sub(r"[^a-z0-9-]+", "-", f"{pipeline}-{kind}".lower()).strip("-")


def _clean(text: str | None) -> str:
    flat = " ".join(_ANSI.sub("", text or "").split())
    return redact(flat)[:MESSAGE_CHARS]


def _table(header: tuple[str, ...], rows: list[tuple]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |")
    return lines


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def summary_markdown(result: RunResult) -> str:
    """The run summary: outcome, rows per table, models, checks, steps with their resources."""
    report = result.report()
    overview = [
        ("run id", f"`{result.run_id}`"),
        ("status", f"**{result.status}**"),
        ("duration", f"{result.duration_s:.1f} s"),
        ("rows loaded", f"{sum(report.rows.values()):,}"),
        ("models built", report.models_built),
        ("tests passed", report.tests_passed),
        ("failed or skipped checks", len(report.failed_checks)),
        ("warnings", len(report.warnings)),
        ("published", ", ".join(sorted(result.published)) or "nothing"),
    ]
    lines = [f"# {result.pipeline}: {result.status}", "", *_table(("", ""), overview)]
    if report.rows:
        rows = sorted(report.rows.items())
        lines += ["", "## Rows loaded", "", *_table(("table", "rows"), rows)]
    steps = [
        (
            s.step_id,
            s.status,
            _number(s.duration_s),
            "-" if s.rows is None else f"{s.rows:,}",
            _number(s.peak_rss_mb, 0),
            _number(s.cpu_s),
        )
        for s in result.steps
    ]
    header = ("step", "status", "duration s", "rows", "peak RSS MiB", "CPU s")
    lines += ["", "## Steps", "", *_table(header, steps)]
    if report.failed_checks:
        lines += ["", "## Failed or skipped checks", ""]
        lines += [f"- {_clean(check)}" for check in report.failed_checks]
    if report.warnings:
        lines += ["", "## Warnings", ""] + [f"- {_clean(w)}" for w in report.warnings]
    if result.error:
        lines += ["", "## Error", "", _clean(result.error)]
    return "\n".join(lines) + "\n"


def quality_rows(result: RunResult) -> list[dict]:
    """One row per dbt test and unit test of the run, problems first."""
    if result.dbt is None:
        return []
    checks = [r for r in result.dbt.results if r.resource_type in _QUALITY_TYPES]
    failed = dbt.FAILED_STATUSES
    checks.sort(key=lambda r: (r.status not in failed, r.status != "warn", r.unique_id))
    return [
        {
            "check": r.unique_id.split(".")[-1],
            "type": r.resource_type,
            "status": r.status,
            "failures": r.failures if r.failures is not None else "",
            "message": _clean(r.message),
            "node": r.unique_id,
        }
        for r in checks
    ]


def publish(result: RunResult) -> dict[str, str]:
    """Create both artifacts in the current flow run; returns their keys by kind."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    keys = {
        "summary": artifact_key(result.pipeline, "summary"),
        "quality": artifact_key(result.pipeline, "quality"),
    }
    create_markdown_artifact(
        markdown=summary_markdown(result),
        key=keys["summary"],
        description=f"elt run {result.run_id}: {result.status}",
    )
    create_table_artifact(
        table=quality_rows(result),
        key=keys["quality"],
        description=f"dbt tests and unit tests of elt run {result.run_id}",
    )
    return keys
