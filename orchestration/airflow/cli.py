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
    """Create or update Airflow pools from `pools:` in pipelines.yml.

    Writes to the metadata database AIRFLOW__DATABASE__SQL_ALCHEMY_CONN names (the Helm
    chart's scheduler init container); without it, to the local one on the warehouse.
    """
    from orchestration.airflow import environment, pools

    config = load_config(
        check_env=False
    )  # pools need no source secrets (the init container has none)
    environment.use_metadata_database()
    try:
        synced = pools.sync_pools(config)
    except Exception as exc:  # an unmigrated database: say what to do
        raise fail(
            f"could not sync pools into Airflow's metadata database ({exc}); migrate it first"
            " (`airflow db migrate`; locally `elt airflow up` does it)"
        ) from None
    table = Table(title="Airflow pools")
    table.add_column("pool")
    table.add_column("slots", justify="right")
    for name, slots in synced.items():
        table.add_row(name, str(slots))
    console.print(table)


@app.command()
def backfill(
    pipeline: Annotated[str, typer.Argument(help="Pipeline (DAG id) to backfill.")],
    from_date: Annotated[
        str, typer.Option("--from", help="First interval's start (YYYY-MM-DD), inclusive.")
    ],
    to_date: Annotated[
        str, typer.Option("--to", help="Last interval's start (YYYY-MM-DD), inclusive.")
    ],
    rerun: Annotated[
        bool, typer.Option(help="Run intervals again that already have a finished run.")
    ] = False,
) -> None:
    """One run per scheduled data interval from --from to --to, by Airflow's scheduler.

    An Airflow 3 backfill (`airflow backfill create`), one run at a time: each run's ingest
    reads only its interval from sources with a cursor. Needs a running scheduler
    (`elt airflow up`); writes to the metadata database the environment names.
    """
    import datetime as dt
    import subprocess
    import sys
    from pathlib import Path

    from elt import paths
    from elt.redact import redact
    from elt.subprocesses import error_line
    from orchestration.airflow import environment

    config = load_config(check_env=False)  # only the schedule counts; no source secrets here
    if pipeline not in config.pipelines:
        raise fail(f"unknown pipeline {pipeline!r}; known: {', '.join(config.pipelines)}")
    if not config.pipelines[pipeline].schedule:
        raise fail(f"pipelines.yml: pipelines.{pipeline} has no schedule: nothing to backfill")
    try:
        start, end = dt.date.fromisoformat(from_date), dt.date.fromisoformat(to_date)
    except ValueError as exc:
        raise fail(f"--from/--to must be dates like 2026-01-31 ({exc})", 2) from None
    if start > end:
        raise fail(f"--from {start} is after --to {end}", 2)
    settings.load_local_env()
    environment.use_metadata_database()
    command = [str(Path(sys.executable).with_name("airflow")), "backfill", "create"]
    command += [
        "--dag-id",
        pipeline,
        "--from-date",
        start.isoformat(),
        "--to-date",
        end.isoformat(),
    ]
    command += ["--max-active-runs", "1", "--reprocess-behavior", "completed" if rerun else "none"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        log = paths.state_dir() / "logs" / "airflow-backfill.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(redact(done.stdout + done.stderr))
        reason = error_line(done.stderr or done.stdout)
        raise fail(
            f"airflow backfill create for {pipeline} failed: {reason}"
            f" — is Airflow's metadata database reachable and the DAG parsed (`elt airflow up`)?"
            f" Full output: {log}"
        )
    console.print(f"[green]backfill of {pipeline} created[/] for {start} … {end}:")
    console.print(done.stdout.strip()[-2000:], highlight=False, markup=False)
    console.print(f"its runs start once the DAG is unpaused (`airflow dags unpause {pipeline}`)")
    console.print(
        f"a scheduled run of {pipeline} that falls while the backfill runs is refused by the"
        " pipeline's lease (see docs/scheduled-runs.md, Backfills)"
    )


@app.command()
def up(
    port: Annotated[int, typer.Option(help="UI/API port on 127.0.0.1.")] = 8080,
    executor: Annotated[
        str,
        typer.Option(help="local (tasks in the scheduler) or celery (Redis + Celery workers)."),
    ] = "local",
    workers: Annotated[int, typer.Option(help="Celery workers, each in its own empty folder.")] = 2,
) -> None:
    """Start Airflow locally: api-server (UI on 127.0.0.1), scheduler, dag-processor.

    With `--executor celery`, also a Redis broker on 127.0.0.1 and `--workers` Celery workers.
    """
    from orchestration.airflow import local

    settings.load_local_env()
    load_config()
    try:
        url = local.up(
            port,
            progress=lambda message: console.print(f"[cyan]→[/] {message}"),
            executor=executor,
            workers=workers,
        )
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
