"""The `elt` command: warehouse, demo sources, config checks, ingestion and pipeline runs."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from elt import paths, settings
from elt.cli_support import err, fail, load_config
from elt.dev_cli import ci as ci_command
from elt.dev_cli import dev_app
from elt.docs_site.cli import docs_app
from elt.redact import redact
from expectations.cli import validate as validate_checks
from orchestration.airflow.cli import app as airflow_app
from orchestration.prefect.cli import app as prefect_app

if TYPE_CHECKING:
    from datetime import date
    from types import FrameType

    from elt.config import ProjectConfig
    from elt.runs import StepRecord
    from elt.spec import Step
    from elt.steps import RunResult

app = typer.Typer(
    help="dbt-centred ELT: dlt ingestion, dbt write-audit-publish, quality gate, orchestration.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
demo_api_app = typer.Typer(help="The local tweets REST API used by the demo.", no_args_is_help=True)
app.add_typer(demo_api_app, name="demo-api")
app.add_typer(docs_app, name="docs")
app.add_typer(dev_app, name="dev")
app.command("ci")(ci_command)
app.add_typer(prefect_app, name="prefect", help="Run pipelines as Prefect flows and deployments.")
app.add_typer(airflow_app, name="airflow", help="Run pipelines as Airflow DAGs (Cosmos).")

console = Console()
_state = {"verbose": False}


@app.callback()
def main_options(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Debug logs, tracebacks.")
    ] = False,
) -> None:
    """Global options."""
    _state["verbose"] = verbose
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING)
    if not verbose:  # one line per failure; tracebacks only with --verbose
        from ingestion.errors import one_line_logs

        one_line_logs()
    settings.load_local_env()


# -- warehouse ----------------------------------------------------------------------------


@app.command()
def up() -> None:
    """Start the embedded warehouse (no-op when ELT_WAREHOUSE_URL is set or it already runs)."""
    if settings.is_external():
        console.print(f"external warehouse: {settings.warehouse(start=False).display_url()}")
        return
    with console.status("starting the embedded PostgreSQL…"):
        conn = settings.warehouse()
    console.print(f"[green]warehouse up[/] {conn.display_url()}")
    from elt import demo

    pid = demo.revive_api()  # `elt down` stopped the demo's tweets API with the warehouse
    if pid:
        console.print(f"demo tweets API up on {demo.api_url()} (pid {pid})")


@app.command()
def down(
    purge: Annotated[bool, typer.Option(help="Also delete the warehouse's data.")] = False,
) -> None:
    """Stop the embedded warehouse."""
    from elt import warehouse

    if settings.is_external():
        console.print("ELT_WAREHOUSE_URL is set: nothing local to stop")
        return
    from elt import demo

    demo.stop_api()  # the demo API is part of the local stack: stop it with the warehouse
    if purge:
        warehouse.destroy()
        console.print("warehouse stopped and its data deleted")
        return
    console.print("warehouse stopped" if warehouse.stop() else "warehouse was not running")


@app.command()
def status() -> None:
    """Show whether the warehouse runs, and where (the password is never shown); close the
    runs whose process died (alerting once) and list the runs in progress."""
    from elt import warehouse

    if settings.is_external():
        console.print(f"external warehouse: {settings.warehouse(start=False).display_url()}")
        _print_runs()
        return
    state = warehouse.status()
    table = Table(show_header=False, box=None)
    table.add_row("running", "[green]yes[/]" if state.running else "[red]no[/]")
    table.add_row("url", state.url or "-")
    table.add_row("pid", str(state.pid or "-"))
    table.add_row("data", str(state.data_dir))
    console.print(table)
    if not state.running:
        raise typer.Exit(3)
    _print_runs()


def _print_runs() -> None:
    """Close the runs whose process died (alerting once), then list what runs now."""
    from elt import lifecycle, runs

    url = settings.warehouse_url()
    runs.migrate(url)
    closed = lifecycle.reap(url, _load_config())
    for run in closed:
        err.print(
            f"[yellow]closed abandoned run[/] {run.run_id} ({run.pipeline}, by"
            f" {run.orchestrator}): {run.reason}",
            highlight=False,
        )
    running = lifecycle.running(url)
    if not running:
        console.print("no pipeline is running")
        return
    table = Table(title="running")
    for column in ("pipeline", "run", "by", "started", "lease until"):
        table.add_column(column)
    for row in running:
        table.add_row(
            row.pipeline,
            row.run_id,
            row.orchestrator,
            f"{row.started_at:%H:%M:%S}",
            f"{row.expires_at:%H:%M:%S}" if row.expires_at else "-",
        )
    console.print(table)


@app.command()
def migrate() -> None:
    """Create or upgrade the run-metadata schema (elt_meta) in the warehouse."""
    from elt import runs

    version = runs.migrate(settings.warehouse_url())
    console.print(f"elt_meta at schema version {version}")


@app.command()
def env() -> None:
    """Print `export` lines for psql, dbt and the orchestrators: eval "$(elt env)"."""
    conn = settings.warehouse()
    values = settings.tool_env(conn)
    values.pop("DBT_ENV_SECRET_PGPASSWORD")  # psql and dbt read the password from PGPASSFILE
    # a libpq URL without the password: psql "$ELT_WAREHOUSE_DSN" finds it in PGPASSFILE
    values["ELT_WAREHOUSE_DSN"] = (
        f"postgresql://{conn.user}@{conn.host}:{conn.port}/{conn.database}"
    )
    values.update(_dbt_env())
    for key, value in sorted(values.items()):
        print(f"export {key}={_shell_quote(value)}")


def _dbt_env() -> dict[str, str]:
    """``dbt`` by hand finds the configured project and the generated profile."""
    from elt import project

    dbt_project = project.of()
    return {
        "DBT_PROJECT_DIR": str(dbt_project.path),
        "DBT_PROFILES_DIR": str(dbt_project.profiles_dir()),
        "DBT_PROFILE": dbt_project.profile,
        "DBT_TARGET": project.TARGET,
    }


def _shell_quote(value: str) -> str:
    import shlex

    return shlex.quote(value)


# -- configuration ------------------------------------------------------------------------


@app.command("validate-config")
def validate_config(
    file: Annotated[Path | None, typer.Option("--file", "-f", help="Config file.")] = None,
    check_env: Annotated[
        bool, typer.Option(help="Also require every env:NAME the pipelines use to be set.")
    ] = True,
) -> None:
    """Check pipelines.yml and report every problem at once (file:line: key: message)."""
    from elt.config import validate_file

    problems = validate_file(file, check_env=check_env)
    if not problems:
        console.print(f"[green]ok[/] {file or paths.config_file()}")
        return
    for problem in problems:
        err.print(f"[red]✗[/] {redact(str(problem))}", highlight=False)
    err.print(f"{len(problems)} problem(s) found")
    raise typer.Exit(2)


def _revive_demo_sources(config: ProjectConfig, source_names: list[str]) -> None:
    """Bring the demo's tweets API back when one of these sources reads it (after a restart)."""
    from elt import demo
    from elt.config import MissingEnvError, RestApiSource, resolve_env
    from elt.demo.background import ApiStartError

    urls = []
    for name in source_names:
        source = config.sources.get(name)
        if isinstance(source, RestApiSource):
            with contextlib.suppress(MissingEnvError):  # the ingest step reports it
                urls.append(resolve_env(source.base_url))
    try:
        if urls and demo.revive_api(urls):
            console.print(f"demo tweets API up on {demo.api_url()}")
    except ApiStartError as exc:  # the ingest step then names the unreachable API
        err.print(f"[yellow]warning:[/] {redact(str(exc))}", highlight=False)


def _load_config() -> ProjectConfig:
    return load_config(check_env=False)


# the quality gate's own command (its GX import happens only when it runs)
app.command("validate")(validate_checks)


# -- demo ---------------------------------------------------------------------------------


@app.command("demo-data")
def demo_data(
    years: Annotated[float, typer.Option(help="Years of jaffle-shop history to generate.")] = 1.0,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same data).")] = 42,
    force: Annotated[bool, typer.Option(help="Regenerate even if data exists.")] = False,
    start_api: Annotated[bool, typer.Option(help="Start the tweets API afterwards.")] = True,
) -> None:
    """Generate jaffle-shop data and lay it out as three sources: shop DB, tweets API, files."""
    from rich.progress import Progress

    from elt import demo

    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"generating {years:g} year(s) of jaffle-shop data", total=None)
        summary = demo.prepare(
            years=years,
            seed=seed,
            force=force,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    table = Table(title="demo sources")
    table.add_column("source")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, count in summary.shop_rows.items():
        table.add_row("shop (PostgreSQL)", name, f"{count:,}")
    table.add_row("social (REST API)", "tweets", f"{summary.rows.get('tweets', 0):,}")
    table.add_row("landing (files)", "supplies", f"{summary.rows.get('supplies', 0):,}")
    console.print(table)
    if start_api:
        pid = demo.start_api()
        console.print(f"tweets API on {summary.api_url} (pid {pid})")
    console.print(f"source settings written to {paths.state_dir() / 'env'} (mode 0600)")


@demo_api_app.command("start")
def demo_api_start() -> None:
    """Start the tweets API in the background."""
    from elt import demo

    console.print(f"tweets API running (pid {demo.start_api()})")


@demo_api_app.command("stop")
def demo_api_stop() -> None:
    """Stop the tweets API."""
    from elt import demo

    console.print("tweets API stopped" if demo.stop_api() else "tweets API was not running")


# -- ingestion and runs -------------------------------------------------------------------


def _loads_table(rows: dict[str, int], title: str) -> Table:
    table = Table(title=title)
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, count in sorted(rows.items()):
        table.add_row(name, f"{count:,}")
    return table


@app.command()
def ingest(
    sources: Annotated[list[str] | None, typer.Argument(help="Sources (default: all).")] = None,
    full_refresh: Annotated[bool, typer.Option(help="Reload everything from scratch.")] = False,
) -> None:
    """Load sources into the warehouse (raw_<source>) with dlt."""
    from ingestion.runner import ingest as run_ingest

    config = _load_config()
    names = sources or list(config.sources)
    unknown = [name for name in names if name not in config.sources]
    if unknown:
        raise fail(f"unknown source(s) {', '.join(unknown)}; known: {', '.join(config.sources)}")
    url = settings.warehouse_url()
    _revive_demo_sources(config, names)
    rows: dict[str, int] = {}
    for name in names:
        with console.status(f"ingesting {name}…"):
            result = run_ingest(
                config.sources[name], full_refresh=full_refresh, destination_url=url
            )
        rows.update({f"{result.dataset}.{table}": count for table, count in result.rows.items()})
        console.print(
            f"[green]✓[/] {name}: {sum(result.rows.values()):,} rows in {result.duration_s:.1f} s"
        )
        for table, count in sorted(result.deleted.items()):
            console.print(f"  {result.dataset}.{table}: {count:,} rows deleted at the source")
    console.print(_loads_table(rows, "rows loaded"))


@app.command()
def build(
    select: Annotated[
        list[str] | None, typer.Option("--select", "-s", help="dbt selection.")
    ] = None,
    publish_marts: Annotated[
        bool, typer.Option("--publish/--no-publish", help="Publish when every test passed.")
    ] = True,
) -> None:
    """dbt build into the audit schema; publish the marts only when every test passed."""
    from elt import dbt, project, publish
    from elt.marts import built_marts

    dbt_project = project.of()
    with console.status("dbt build…"):
        outcome = dbt.invoke("build", dbt.selection_args(select or []), project=dbt_project)
    console.print(
        f"models {outcome.count('model', 'success')}, tests passed {outcome.count('test', 'pass')},"
        f" warned {len(outcome.warned)}, failed {len(outcome.failed)}"
    )
    if not outcome.success:
        details = "\n".join(f"  {r.unique_id}: {r.message or r.status}" for r in outcome.failed)
        raise fail(f"dbt build failed; nothing was published\n{details or outcome.error}")
    if publish_marts:
        # the marts from the manifest the build wrote: no second dbt invocation (`dbt ls`)
        built = (r.unique_id for r in outcome.results)
        marts = built_marts(dbt_project, built, target_path=dbt_project.target_dir())
        result = publish.publish(marts=marts)
        console.print(f"[green]published[/] {len(result.tables)} marts to {result.schema}")


@app.command()
def run(
    pipeline: Annotated[str, typer.Argument(help="Pipeline name from pipelines.yml.")],
    full_refresh: Annotated[bool, typer.Option(help="Reload and rebuild from scratch.")] = False,
    with_upstream: Annotated[
        bool, typer.Option(help="First run the pipelines it depends_on (upstream first).")
    ] = False,
) -> None:
    """Run a pipeline end to end, in-process: ingest → dbt build → gate → publish → notify."""
    from elt.lease import PipelineBusyError
    from elt.runner import upstream_pipelines

    config = _load_config()
    if pipeline not in config.pipelines:
        raise fail(f"unknown pipeline {pipeline!r}; known: {', '.join(config.pipelines)}")
    order = [*upstream_pipelines(config, pipeline), pipeline] if with_upstream else [pipeline]
    _stop_on_sigterm()
    _revive_demo_sources(config, [s for name in order for s in config.pipelines[name].sources])
    for name in order:
        try:
            result = _run_one(config, name, full_refresh)
        except PipelineBusyError as exc:
            raise fail(str(exc), 3) from None
        if result.status != "succeeded":
            raise fail(f"run {result.run_id} failed: {result.error}")


def _stop_on_sigterm() -> None:
    """SIGTERM (a scheduler or `kill`) stops a run as Ctrl-C does: recorded and alerted."""
    import signal

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"stopped by signal {signal.Signals(signum).name}")

    signal.signal(signal.SIGTERM, interrupt)


def _run_one(config: ProjectConfig, pipeline: str, full_refresh: bool) -> RunResult:
    from elt.runner import run_pipeline

    started = time.monotonic()
    with console.status(f"running {pipeline}…") as spinner:

        def show(event: str, step: Step, record: StepRecord | None) -> None:
            if event == "start":
                spinner.update(f"{step.id}…")
            elif record is None:
                return
            elif record.detail.get("skipped"):
                console.print(f"[yellow]-[/] {step.id} skipped: {record.detail['skipped']}")
            elif record.status == "succeeded":
                console.print(f"[green]✓[/] {step.id} ({record.duration_s:.1f} s)")
            else:
                error = redact(str(record.detail.get("error", "")))
                console.print(f"[red]✗[/] {step.id}: {error}", highlight=False)

        result = run_pipeline(
            config,
            pipeline,
            full_refresh=full_refresh,
            listener=show,
            progress=lambda message: spinner.update(redact(message)),
        )
    _print_summary(result, time.monotonic() - started)
    return result


def _print_summary(result: RunResult, wall_s: float) -> None:
    report = result.report()
    console.print(_loads_table(report.rows, f"rows loaded — run {result.run_id}"))
    console.print(
        f"models built: {report.models_built}, tests passed: {report.tests_passed}, "
        f"warnings: {len(report.warnings)}, failed: {len(report.failed_checks)}"
    )
    if result.published:
        console.print(f"published: {', '.join(sorted(result.published))}")
    for record in result.steps:
        if record.kind == "export" and record.detail.get("rows"):
            counts = ", ".join(f"{m} ({n:,} rows)" for m, n in record.detail["rows"].items())
            console.print(f"exported: {counts}, run_date={record.detail['run_date']}")
    color = "green" if result.status == "succeeded" else "red"
    console.print(f"[{color}]{result.status}[/] in {wall_s:.1f} s")


@app.command()
def schema(
    markdown: Annotated[
        bool, typer.Option(help="The reference page (docs/pipelines-yml.md) instead.")
    ] = False,
    write: Annotated[
        bool, typer.Option(help="Write pipelines.schema.json and docs/pipelines-yml.md.")
    ] = False,
) -> None:
    """Print the JSON Schema of pipelines.yml (made from its pydantic models)."""
    from elt import schema_docs

    if write:
        for name, text in schema_docs.generated_files().items():
            (paths.project_root() / name).write_text(text)
            console.print(f"wrote {name}")
        return
    sys.stdout.write(schema_docs.markdown() if markdown else schema_docs.schema_text())


scaffold_app = typer.Typer(
    help="Generate starting files from what is loaded.", no_args_is_help=True
)
app.add_typer(scaffold_app, name="scaffold")


@scaffold_app.command("dbt")
def scaffold_dbt(
    source: Annotated[str, typer.Argument(help="A source of pipelines.yml, already loaded.")],
    project_dir: Annotated[
        Path | None, typer.Option(help="dbt project (default: the project's).")
    ] = None,
) -> None:
    """dbt staging for SOURCE: __sources.yml and a stg_ model (.sql + .yml) per raw table;
    files that exist are kept."""
    from elt.scaffold import ScaffoldError, scaffold

    config = _load_config()
    if source not in config.sources:
        raise fail(f"unknown source {source!r}; known: {', '.join(config.sources)}")
    target = project_dir or paths.dbt_project_dir()
    try:
        result = scaffold(
            source,
            settings.warehouse_url(),
            target,
            description=config.sources[source].description,
        )
    except ScaffoldError as exc:
        raise fail(str(exc)) from None
    for path in result.written:
        console.print(f"[green]wrote[/] {path}")
    for path in result.kept:
        console.print(f"[yellow]kept[/] {path} (exists)")


# -- export -------------------------------------------------------------------------------


@app.command()
def freshness(
    pipeline: Annotated[str, typer.Argument(help="Pipeline whose sources are checked.")],
) -> None:
    """`dbt source freshness` on the pipeline's sources with the thresholds of pipelines.yml;
    alerts (notify) on a stale table, exits 1 when one passed error_after."""
    from elt import freshness_check

    config = _load_config()
    pipe = config.pipeline(pipeline)
    with console.status("dbt source freshness…"):
        tables = freshness_check.check(config, pipe)
    table = Table(title=f"source freshness of {pipe.name}")
    for column in ("table", "status", "age"):
        table.add_column(column)
    for found in tables:
        age = "-" if found.age_s is None else f"{found.age_s / 3600:.1f} h"
        table.add_row(f"{found.source}.{found.table}", found.status, age)
    console.print(table if tables else "no source of this pipeline declares freshness")
    freshness_check.alert(pipe, tables)
    if any(found.status in ("error", "runtime error") for found in tables):
        raise typer.Exit(1)


@app.command("export")
def export_command(
    pipeline: Annotated[
        str | None, typer.Argument(help="Pipeline whose export: block gives the defaults.")
    ] = None,
    to: Annotated[
        str | None,
        typer.Option(help="Local folder, file:// or s3://bucket/prefix URL, or env:NAME."),
    ] = None,
    models: Annotated[
        list[str] | None, typer.Option("--model", "-m", help="Published model (repeatable).")
    ] = None,
    run_date: Annotated[
        str | None, typer.Option(help="Partition date YYYY-MM-DD (default: today, UTC).")
    ] = None,
) -> None:
    """Write published models to a bucket as Parquet: <to>/<model>/run_date=<date>/."""
    from elt import runs
    from elt.config import MissingEnvError
    from elt.export import ExportError, export_models

    to, models, name = _export_settings(pipeline, to, models)
    day = _parse_date(run_date) if run_date else None
    try:
        with console.status(f"exporting {', '.join(models)}…"):
            result = export_models(
                models, to, run_date=day, run_id=runs.new_run_id(name or "export")
            )
    except (ExportError, MissingEnvError) as exc:
        raise fail(str(exc)) from None
    table = Table(title=f"exported to {result.location} (run_date={result.run_date})")
    table.add_column("model")
    table.add_column("rows", justify="right")
    table.add_column("files")
    for model, count in result.rows.items():
        table.add_row(model, f"{count:,}", "\n".join(result.files[model]))
    console.print(table)


def _export_settings(
    pipeline: str | None, to: str | None, models: list[str] | None
) -> tuple[str, list[str], str | None]:
    """``--to`` and ``--model``, completed from the pipeline's ``export:`` block."""
    if pipeline is None and to and models:
        return to, models, None
    config = _load_config()
    if pipeline is None:
        declaring = [name for name, pipe in config.pipelines.items() if pipe.export]
        if len(declaring) != 1:
            raise fail(
                "name the pipeline whose export: block to use, or give --to and --model"
                f" (pipelines with export: {', '.join(declaring) or 'none'})"
            )
        pipeline = declaring[0]
    if pipeline not in config.pipelines:
        raise fail(f"unknown pipeline {pipeline!r}; known: {', '.join(config.pipelines)}")
    spec = config.pipelines[pipeline].export
    if spec is None:
        if to and models:
            return to, models, pipeline
        raise fail(
            f"pipeline {pipeline!r} has no export: block; add one to pipelines.yml"
            " or give --to and --model"
        )
    return to or spec.to, models or list(spec.models), pipeline


def _parse_date(text: str) -> date:
    from datetime import date

    try:
        return date.fromisoformat(text)
    except ValueError:
        raise fail(f"--run-date must be a date YYYY-MM-DD (got {text!r})") from None


def main() -> None:
    """Entry point: run the app, turning expected failures into one clear line."""
    try:
        app()
    except (typer.Exit, SystemExit):
        raise
    except Exception as exc:  # the last resort: print one clear line, never a secret
        if _state["verbose"]:
            err.print_exception()
        message = redact(f"{type(exc).__name__}: {exc}")
        err.print(f"[bold red]error:[/] {message}", highlight=False)
        if not _state["verbose"]:
            err.print("(run with --verbose for the traceback)")
        sys.exit(1)


if __name__ == "__main__":
    main()
