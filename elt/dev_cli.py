"""``elt dev`` / ``elt dev clean`` / ``elt ci``: dbt build in development and slim CI.

Registered by ``elt/cli.py``; the work itself is in :mod:`elt.develop`.
"""

from __future__ import annotations

import os
import subprocess
from typing import Annotated

import typer
from rich.console import Console

from elt import settings
from elt.cli_support import fail
from elt.config import Pipeline, ProjectConfig
from elt.develop import DevBuild
from elt.project import DbtProject
from elt.redact import redact

dev_app = typer.Typer(
    help="Build dbt models into your own schema, deferring to production.",
    invoke_without_command=True,
)
console = Console()

PipelineOption = Annotated[
    str | None,
    typer.Option("--pipeline", "-p", help="Use this pipeline's dbt project and selection."),
]
SelectOption = Annotated[
    list[str] | None, typer.Option("--select", "-s", help="dbt selection (repeatable).")
]


def _project_and_selection(
    pipeline: str | None, select: list[str] | None
) -> tuple[ProjectConfig, Pipeline | None, DbtProject, list[str], list[str]]:
    """The dbt project and selection: the pipeline's, or the top-level project's."""
    from elt import config as elt_config
    from elt import project

    settings.load_local_env()
    try:
        config = elt_config.load()
        pipe = config.pipeline(pipeline) if pipeline else None
        dbt_project = project.of(config, pipe)
    except (elt_config.ConfigError, elt_config.UnknownPipelineError) as exc:
        raise fail(str(exc), 2) from None
    except project.DbtProjectError as exc:
        raise fail(str(exc)) from None
    chosen = select or (list(pipe.dbt.select) if pipe else [])
    exclude = list(pipe.dbt.exclude) if pipe and not select else []
    return config, pipe, dbt_project, chosen, exclude


@dev_app.callback()
def dev(
    ctx: typer.Context,
    modified: Annotated[
        bool,
        typer.Option("--modified", help="Only what changed since the last publish (+ children)."),
    ] = False,
    pipeline: PipelineOption = None,
    select: SelectOption = None,
) -> None:
    """dbt build into dev_<user> (ELT_DEV_SCHEMA / ELT_DEV_USER override), reading what you
    did not build from production; never touches the audit or published schemas."""
    if ctx.invoked_subcommand is not None:
        return
    from elt import develop

    _, _, project, chosen, exclude = _project_and_selection(pipeline, select)
    schema = develop.dev_schema()
    try:
        with console.status(f"dbt build into {schema}…"):
            result = develop.build(
                project, schema, modified=modified, select=chosen, exclude=exclude
            )
    except develop.DevError as exc:
        raise fail(str(exc)) from None
    _print_build(result)
    if not result.outcome.success:
        raise fail(f"dbt build into {schema} failed")


@dev_app.command("clean")
def dev_clean() -> None:
    """Drop your development schemas (dev_<user> and dev_<user>_*)."""
    from elt import develop

    settings.load_local_env()
    try:
        dropped = develop.drop_schemas(develop.dev_schema())
    except develop.DevError as exc:
        raise fail(str(exc)) from None
    console.print(f"dropped {len(dropped)} schema(s): {', '.join(dropped) or '-'}")


def _print_build(result: DevBuild) -> None:
    outcome = result.outcome
    where = (
        f"deferring to run {result.state_run}"
        if result.state_run
        else "no published run yet: built everything"
    )
    console.print(f"[bold]{result.schema}[/] ({where})")
    if result.selected:
        console.print(f"changed or downstream: {', '.join(result.selected)}")
    console.print(
        f"models built: {outcome.count('model', 'success')}, tests passed:"
        f" {outcome.count('test', 'pass')}, failed: {len(outcome.failed)}"
    )
    for record in outcome.failed:
        console.print(f"[red]✗[/] {record.unique_id}: {redact(record.message or record.status)}")
    if outcome.error and not outcome.results:
        console.print(f"[red]dbt could not run:[/] {redact(outcome.error)}")


def ci(
    name: Annotated[
        str | None,
        typer.Option("--name", help="Branch or PR name for the schema (default: from CI or git)."),
    ] = None,
    pipeline: PipelineOption = None,
    select: SelectOption = None,
    keep: Annotated[bool, typer.Option(help="Keep the CI schema (to inspect it).")] = False,
) -> None:
    """Slim CI: build what changed since the last publish (+ children) into ci_<branch>,
    print a summary (models changed, failed tests, row counts vs published), drop it."""
    from elt import develop
    from elt.marts import selected_marts

    config, _, project, chosen, exclude = _project_and_selection(pipeline, select)
    schema = develop.schema_name("ci", name or _branch())
    url = settings.warehouse_url()
    try:
        with console.status(f"dbt build of the changes into {schema}…"):
            result = develop.build(
                project, schema, url=url, modified=True, select=chosen, exclude=exclude
            )
        with develop.target_schema(schema):
            marts = [
                m.name
                for m in selected_marts(
                    project,
                    chosen,
                    exclude,
                    target_path=develop.work_dir(project, schema) / "target",
                )
                if m.name in result.selected
            ]
        counts = develop.row_counts(url, schema, marts)
        published = develop.row_counts(url, settings.published_schema(), marts)
        built = {name for name, count in counts.items() if count is not None}
        checks = [
            line
            for pipe in _pipelines_of(config, project, pipeline)
            for line in develop.ci_checks(config, pipe, schema, built, url)
        ]
    except develop.DevError as exc:
        raise fail(str(exc)) from None
    finally:
        if not keep:
            develop.drop_schemas(schema, url)
    _print_build(result)
    for mart in marts:
        console.print(
            f"rows {mart}: {_count(published[mart])} published → {_count(counts[mart])} here"
        )
    for line in checks:
        console.print(f"[red]✗[/] quality rule {line}", highlight=False)
    console.print(f"schema {schema} {'kept' if keep else 'dropped'}")
    blocking = [line for line in checks if line.endswith("[fail]")]
    if not result.outcome.success or blocking:
        raise fail(
            f"CI failed: {len(result.outcome.failed)} dbt node(s), {len(blocking)} quality rule(s)"
        )


def _pipelines_of(
    config: ProjectConfig, project: DbtProject, pipeline: str | None
) -> list[Pipeline]:
    """The pipeline asked for, else every pipeline that builds ``project``."""
    from elt import project as dbt_project

    if pipeline:
        return [config.pipeline(pipeline)]
    return [
        pipe
        for pipe in config.pipelines.values()
        if dbt_project.of(config, pipe).path == project.path
    ]


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _branch() -> str:
    """The branch (or merge request) being tested, from common CI variables or git."""
    for key in ("GITHUB_HEAD_REF", "GITHUB_REF_NAME", "CI_MERGE_REQUEST_IID", "CI_COMMIT_REF_SLUG"):
        if os.environ.get(key):
            return os.environ[key]
    try:
        found = subprocess.run(
            ["git", "rev-parse", "--abbrev-ref", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        found = ""
    return found or "local"
