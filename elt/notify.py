"""Notifications through Apprise URLs (Slack, email, generic JSON webhooks, …).

One message format for every orchestrator: pipeline, run id, status, rows per source,
models built, failed checks and duration. URLs come from ``pipelines.yml`` as ``env:NAME``
references, so the secret part of a webhook never sits in a file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from elt.config import resolve_env


@dataclass
class RunReport:
    """What a notification says about one run."""

    pipeline: str
    run_id: str
    status: str  # succeeded | failed | quality_warning
    duration_s: float
    rows: dict[str, int] = field(default_factory=dict)  # "source.table" → rows
    models_built: int = 0
    tests_passed: int = 0
    failed_checks: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def event(self) -> str:
        """The notify event this report belongs to."""
        if self.status == "failed":
            return "failure"
        return "quality_warning" if self.warnings else "success"

    def title(self) -> str:
        """One line: pipeline and outcome."""
        return f"[elt] {self.pipeline}: {self.status} ({self.duration_s:.1f} s)"

    def body(self) -> str:
        """Plain text, readable in Slack, email and JSON payloads alike."""
        lines = [
            f"run {self.run_id}",
            f"rows loaded: {sum(self.rows.values())}",
            *(f"  {table}: {count}" for table, count in sorted(self.rows.items())),
            f"models built: {self.models_built}, tests passed: {self.tests_passed}",
        ]
        if self.failed_checks:
            lines.append("failed checks:")
            lines += [f"  {check}" for check in self.failed_checks]
        if self.warnings:
            lines.append("warnings:")
            lines += [f"  {warning}" for warning in self.warnings]
        if self.error:
            lines.append(f"error: {self.error}")
        return "\n".join(lines)


def send(urls: list[str], report: RunReport) -> int:
    """Send ``report`` to every resolvable URL; returns how many were notified."""
    import apprise

    resolved = [url for url in (resolve_env(u) for u in urls) if url]
    if not resolved:
        return 0
    client = apprise.Apprise()
    for url in resolved:
        client.add(url)
    client.notify(title=report.title(), body=report.body())
    return len(resolved)
