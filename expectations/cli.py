"""``elt validate [PIPELINE]``: run the GX quality checks now and show them as a table.

The lead registers :func:`validate` on the ``elt`` app (``app.command("validate")(validate)``).
Exit codes: 0 when nothing blocks (warnings allowed), 1 on a failed ``fail`` check,
2 when pipelines.yml or a suite cannot be used.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from elt.redact import redact

console = Console()
err = Console(stderr=True, soft_wrap=True)


def checks_table(outcome) -> Table:
    """The rich table of one gate run: suite, expectation, column, observed, success, severity."""
    from expectations.results import format_observed

    table = Table(title=f"{outcome.pipeline} — {outcome.stage} checks")
    for header in ("suite", "expectation", "column", "observed", "success", "severity"):
        table.add_column(header, overflow="fold")
    for check in outcome.checks:
        if check.success:
            status = "[green]✓[/]"
        elif check.severity == "warn":
            status = "[yellow]✗ warn[/]"
        else:
            status = "[red]✗[/]"
        table.add_row(
            check.suite,
            f"{check.expectation_name}\n[dim]{check.expectation_type}[/]",
            check.column_name or "",
            redact(format_observed(check)),
            status,
            check.severity,
        )
    return table


def validate(
    pipeline: Annotated[
        str | None, typer.Argument(help="Pipeline from pipelines.yml (default: every one).")
    ] = None,
    stage: Annotated[
        str, typer.Option(help="audit: the marts before publish; raw: the raw tables.")
    ] = "audit",
    load_id: Annotated[
        str | None, typer.Option(help="Raw stage: check only the rows of this dlt load.")
    ] = None,
) -> None:
    """Run the pipeline's quality rules and GX suites now; record them and build Data Docs."""
    from elt import runs, settings
    from elt.config import ConfigError, load
    from expectations.gate import run_quality
    from expectations.plan import QualityConfigError

    if stage not in ("audit", "raw"):
        err.print(f"[bold red]error:[/] --stage must be audit or raw (got {stage!r})")
        raise typer.Exit(2)
    try:
        config = load(check_env=False)
        names = [pipeline] if pipeline else list(config.pipelines)
        pipes = [config.pipeline(name) for name in names]
    except (ConfigError, KeyError) as exc:
        err.print(f"[bold red]error:[/] {redact(str(exc))}", highlight=False)
        raise typer.Exit(2) from None
    url = settings.warehouse_url()
    runs.migrate(url)
    blocking = 0
    for pipe in pipes:
        run_id = runs.new_run_id(f"validate-{pipe.name}")
        try:
            with console.status(f"checking {pipe.name} ({stage})…"):
                outcome = run_quality(
                    config, pipe, run_id=run_id, url=url, stage=stage, load_id=load_id
                )
        except QualityConfigError as exc:
            err.print(f"[bold red]error:[/] {redact(str(exc))}", highlight=False)
            raise typer.Exit(2) from None
        if not outcome.checks:
            console.print(f"{pipe.name}: no {stage} checks declared")
            continue
        console.print(checks_table(outcome))
        blocking += len(outcome.blocking)
        console.print(
            f"{len(outcome.checks)} checks, {len(outcome.blocking)} blocking,"
            f" {len(outcome.warnings)} warnings — run {run_id} ({outcome.duration_s:.1f} s)"
        )
        if outcome.docs_index:
            console.print(f"Data Docs: {outcome.docs_index}")
    if blocking:
        err.print(f"[bold red]quality gate closed:[/] {blocking} failed check(s) of severity fail")
        raise typer.Exit(1)
