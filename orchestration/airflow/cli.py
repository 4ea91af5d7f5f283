"""``elt airflow …``: a local Airflow, its pools, the dbt manifest, and one-off DAG runs.

Register with ``app.add_typer(orchestration.airflow.cli.app, name="airflow")``. Airflow is
imported only inside the commands that need it, after its environment is set.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from elt import settings
from elt.cli_support import fail, load_config

app = typer.Typer(
    help="Airflow: one DAG per pipeline (dbt rendered by Cosmos), pools, local server.",
    no_args_is_help=True,
)
console = Console()


@app.command("parse-manifest")
def parse_manifest_command() -> None:
    """Run `dbt parse` for each dbt project of the pipelines: the manifests Cosmos renders
    DAGs from (under .elt/dbt/<project>/manifest)."""
    from elt.project import DbtProjectError
    from orchestration.airflow.manifest import ManifestError, parse_manifest, projects_of

    settings.load_local_env()
    try:
        for project in projects_of(load_config()):
            with console.status(f"dbt parse {project.name}…"):
                parsed = parse_manifest(project)
            console.print(
                f"[green]✓[/] {project.name}: {parsed.nodes} dbt nodes → {parsed.path}"
                f" ({parsed.duration_s:.1f} s)"
            )
    except (ManifestError, DbtProjectError) as exc:
        raise fail(str(exc)) from None


@app.command("sync-pools")
def sync_pools_command() -> None:
    """Create or update Airflow pools from `pools:` in pipelines.yml."""
    import os

    from orchestration.airflow import environment, pools

    config = load_config()
    conn = settings.warehouse()
    environment.ensure_metadata_database(conn)
    os.environ.update(environment.base_env())
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = environment.metadata_url(conn)
    try:
        synced = pools.sync_pools(config)
    except Exception as exc:  # an unmigrated database: say what to do
        raise fail(f"could not sync pools ({exc}); run `elt airflow up` once first") from None
    table = Table(title="Airflow pools")
    table.add_column("pool")
    table.add_column("slots", justify="right")
    for name, slots in synced.items():
        table.add_row(name, str(slots))
    console.print(table)


@app.command()
def up(
    port: Annotated[int, typer.Option(help="UI/API port on 127.0.0.1.")] = 8080,
) -> None:
    """Start Airflow locally: api-server (UI on 127.0.0.1), scheduler, dag-processor."""
    from orchestration.airflow import local

    settings.load_local_env()
    load_config()
    try:
        url = local.up(port, progress=lambda message: console.print(f"[cyan]→[/] {message}"))
    except local.AirflowLocalError as exc:
        raise fail(str(exc)) from None
    console.print(f"[green]Airflow up[/] {url}  (logs: {local.log_dir()})")
    console.print("stop it with `elt airflow down`")


@app.command()
def down() -> None:
    """Stop the Airflow processes `elt airflow up` started (by PID)."""
    from orchestration.airflow import local

    stopped = local.down()
    console.print(f"stopped {', '.join(stopped)}" if stopped else "Airflow was not running")


@app.command()
def status() -> None:
    """Show the local Airflow processes."""
    from orchestration.airflow import local

    table = Table(show_header=True)
    table.add_column("process")
    table.add_column("pid")
    table.add_column("running")
    for service in local.services():
        table.add_row(service.name, str(service.pid or "-"), "yes" if service.running else "no")
    console.print(table)
    console.print(f"UI: {local.ui_url() or '-'}")
    if not all(service.running for service in local.services()):
        raise typer.Exit(3)


@app.command("test")
def test_command(
    pipeline: Annotated[str, typer.Argument(help="Pipeline (DAG id) to run once.")],
) -> None:
    """Run one pipeline DAG once in this process (`dag.test()`), without a scheduler."""
    import os
    import time

    from orchestration.airflow import environment, manifest, testing

    settings.load_local_env()
    config = load_config()
    if pipeline not in config.pipelines:
        raise fail(f"unknown pipeline {pipeline!r}; known: {', '.join(config.pipelines)}")
    conn = settings.warehouse()
    environment.ensure_metadata_database(conn)
    testing.configure(environment.metadata_url(conn))
    os.environ.update(settings.tool_env(conn))
    started = time.monotonic()
    with console.status("preparing Airflow and the dbt manifest…"):
        testing.migrate_metadata_db()
        manifest.parse_stale(config)
        bag = testing.load_dagbag()
    if bag.import_errors:
        raise fail("\n".join(str(e) for e in bag.import_errors.values()))
    with console.status(f"running {pipeline}…"):
        outcome = testing.run_dag(bag.dags[pipeline])
    failed = sorted(t for t, s in outcome.task_states.items() if s in ("failed", "upstream_failed"))
    console.print(
        f"{pipeline}: {outcome.state} — {len(outcome.task_states)} tasks,"
        f" DAG run {outcome.duration_s:.1f} s, total {time.monotonic() - started:.1f} s"
    )
    if failed:
        console.print(f"[red]not succeeded:[/] {', '.join(failed)}")
    if "success" not in outcome.state:
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
