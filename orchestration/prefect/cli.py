"""``elt prefect …``: deployments, local schedules, concurrency limits and one-off runs.

A typer sub-app; ``elt/cli.py`` mounts it as ``elt prefect``. Prefect is imported inside the
commands only, after :func:`orchestration.prefect.environment.prepare`, so ``elt --help``
stays fast and Prefect's home stays under ``.elt/``.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from elt import paths, settings
from elt.cli_support import fail, load_config
from elt.subprocesses import run_checked
from orchestration.prefect import deployments
from orchestration.prefect.environment import prepare

app = typer.Typer(
    help="Run the pipelines with Prefect: deployments, local schedules, concurrency limits.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
console = Console()

DEPLOY_TIMEOUT_S = 600
MAX_BACKFILL_RUNS = 400  # a year of daily runs; a typo in --from must not queue thousands


def _api_url() -> str | None:
    prepare()
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    return str(url) if url else None


def _require_server() -> str:
    from orchestration.prefect.server import healthy

    url = _api_url()
    if not url:
        raise fail(
            "no Prefect server configured: start one with `elt prefect server` and set "
            "PREFECT_API_URL=http://127.0.0.1:4200/api (or use --write-only)"
        )
    if not healthy(url):
        raise fail(f"the Prefect server at {url} does not answer; is it running?")
    return url


def _pipelines(config, names: list[str] | None) -> list[str]:
    wanted = names or list(config.pipelines)
    unknown = [name for name in wanted if name not in config.pipelines]
    if unknown:
        known = ", ".join(config.pipelines)
        raise fail(f"unknown pipeline(s) {', '.join(unknown)}; known: {known}")
    return wanted


# -- concurrency limits -------------------------------------------------------------------


@app.command("sync-limits")
def sync_limits_command() -> None:
    """Create or update one Prefect concurrency limit (tag:<pool>) per pool in pipelines.yml."""
    from orchestration.prefect.limits import sync_limits

    config = load_config()
    _require_server()
    synced = sync_limits(config)
    table = Table(title="Prefect concurrency limits")
    table.add_column("limit")
    table.add_column("slots", justify="right")
    for name, slots in synced.items():
        table.add_row(name, str(slots))
    console.print(table)


# -- deployments --------------------------------------------------------------------------


def _ensure_work_pool(target: str) -> None:
    import json

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
    from prefect.exceptions import ObjectNotFound

    if target == "local":
        name, kind, template = deployments.LOCAL_POOL, "process", None
    else:
        name, kind = deployments.KUBERNETES_POOL, "kubernetes"
        template = json.loads(deployments.job_template_path().read_text())
    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
        except ObjectNotFound:
            extra = {"base_job_template": template} if template else {}
            client.create_work_pool(WorkPoolCreate(name=name, type=kind, **extra))
            return
        if template:  # keep the server's template in step with the file
            client.update_work_pool(name, WorkPoolUpdate(base_job_template=template))


def _prefect_deploy(prefect_file: Path, names: list[str]) -> None:
    args = [str(Path(sys.executable).with_name("prefect")), "--no-prompt", "deploy"]
    args += ["--prefect-file", str(prefect_file)]
    for name in names:
        args += ["--name", name]
    try:
        run_checked(
            args,
            "prefect deploy",
            timeout=DEPLOY_TIMEOUT_S,
            env=os.environ.copy(),
            cwd=paths.project_root(),
        )
    except RuntimeError as exc:
        raise fail(str(exc)) from None


@app.command()
def deploy(
    pipelines: Annotated[
        list[str] | None, typer.Argument(help="Pipelines to deploy (default: all).")
    ] = None,
    target: Annotated[
        str, typer.Option(help="Which deployments to register: local or kubernetes.")
    ] = "local",
    write_only: Annotated[
        bool, typer.Option("--write-only", help="Only write prefect.yaml; register nothing.")
    ] = False,
    image: Annotated[
        str, typer.Option(help="Image of the kubernetes deployments.")
    ] = deployments.DEFAULT_IMAGE,
    namespace: Annotated[
        str, typer.Option(help="Namespace of the kubernetes deployments.")
    ] = deployments.DEFAULT_NAMESPACE,
    file: Annotated[
        Path | None, typer.Option("--file", help="Where to write prefect.yaml.")
    ] = None,
) -> None:
    """Write orchestration/prefect/prefect.yaml and register the target's deployments.

    Registering also syncs the pools' concurrency limits and creates the work pool
    (elt-local: process; elt-kubernetes: k8s/prefect/base-job-template.json).
    """
    if target not in deployments.TARGETS:
        raise fail(f"--target must be one of {', '.join(deployments.TARGETS)} (got {target!r})")
    config = load_config()
    wanted = _pipelines(config, pipelines)
    document = deployments.prefect_yaml(config, image=image, namespace=namespace)
    path = deployments.write_prefect_yaml(document, file or deployments.prefect_yaml_path())
    console.print(f"[green]wrote[/] {path} ({len(document['deployments'])} deployments)")
    if write_only:
        return
    from orchestration.prefect.limits import sync_limits

    url = _require_server()
    sync_limits(config)
    _ensure_work_pool(target)
    names = deployments.deployment_names(config, target, wanted)
    with console.status(f"registering {len(names)} deployment(s) on {url}…"):
        _prefect_deploy(path, names)
    for name in names:
        console.print(f"[green]✓[/] {name} → work pool {_pool_of(target)}")
    if target == "local":
        console.print(f"start a worker to run them: elt prefect worker  (pool {_pool_of(target)})")


def _pool_of(target: str) -> str:
    return deployments.LOCAL_POOL if target == "local" else deployments.KUBERNETES_POOL


# -- running ------------------------------------------------------------------------------


def served_deployments(config, names: list[str]):
    """Runner deployments of ``names`` for ``serve``: schedule, parameters, run limit, tags."""
    from prefect.events import DeploymentTriggerTypes
    from prefect.schedules import Cron
    from pydantic import TypeAdapter

    from orchestration.prefect import compat
    from orchestration.prefect.factory import build_flow

    as_trigger = TypeAdapter(DeploymentTriggerTypes).validate_python

    served = []
    for name in names:
        pipe = config.pipeline(name)
        spec = deployments.deployment(pipe, "local")
        deployment = build_flow(config, name).to_deployment(
            name="serve",
            schedules=[Cron(s["cron"], timezone=s["timezone"]) for s in spec["schedules"]],
            triggers=[as_trigger(t) for t in spec["triggers"]],
            parameters=spec["parameters"],
            concurrency_limit=pipe.max_active_runs,
            description=spec["description"],
            tags=spec["tags"],
        )
        # runs start in a fresh process that imports the flow by module, like a worker
        compat.import_by_module(deployment, f"orchestration.prefect.flows.{name}")
        served.append(deployment)
    return served


@app.command()
def serve(
    pipelines: Annotated[
        list[str] | None, typer.Argument(help="Pipelines to serve (default: all).")
    ] = None,
) -> None:
    """Run the pipelines on their schedules from this process (development); Ctrl-C stops."""
    from prefect import serve as prefect_serve

    from orchestration.prefect.limits import sync_limits

    config = load_config()
    wanted = _pipelines(config, pipelines)
    _require_server()
    sync_limits(config)
    prefect_serve(*served_deployments(config, wanted), pause_on_shutdown=True)


@app.command()
def run(
    pipeline: Annotated[str, typer.Argument(help="Pipeline name from pipelines.yml.")],
    full_refresh: Annotated[bool, typer.Option(help="Reload and rebuild from scratch.")] = False,
) -> None:
    """Run one pipeline's flow now, in this process (reported to the Prefect server)."""
    config = load_config()
    _pipelines(config, [pipeline])
    prepare()
    from orchestration.prefect.factory import PipelineRunFailed, build_flow

    flow = build_flow(config, pipeline)
    try:
        outcome = flow(full_refresh=full_refresh)
    except PipelineRunFailed as exc:
        raise fail(str(exc)) from None
    console.print(
        f"[green]{outcome['status']}[/] run {outcome['run_id']}: {outcome['rows']:,} rows,"
        f" published {', '.join(outcome['published']) or 'nothing'}"
    )


@app.command()
def backfill(
    pipeline: Annotated[str, typer.Argument(help="Pipeline to backfill.")],
    from_date: Annotated[
        str, typer.Option("--from", help="First interval's start (YYYY-MM-DD), inclusive.")
    ],
    to_date: Annotated[
        str, typer.Option("--to", help="Last interval's start (YYYY-MM-DD), inclusive.")
    ],
    target: Annotated[str, typer.Option(help="Deployment to run: local or kubernetes.")] = "local",
) -> None:
    """One flow run per scheduled data interval from --from to --to, through the deployment.

    Each run gets its interval as parameters, so its ingest reads only that window from
    sources with a cursor; the deployment's run limit queues them (workers run them).
    """
    import datetime as dt

    from orchestration.prefect import schedules

    config = load_config(check_env=False)  # only the schedule counts; no source secrets here
    _pipelines(config, [pipeline])
    try:
        first = dt.datetime.fromisoformat(from_date).replace(tzinfo=dt.UTC)
        last = dt.datetime.fromisoformat(to_date).replace(tzinfo=dt.UTC)
    except ValueError as exc:
        raise fail(f"--from/--to must be dates like 2026-01-31 ({exc})", 2) from None
    wanted = schedules.intervals(config.pipelines[pipeline].schedule, first, last)
    if not wanted:
        raise fail(f"pipelines.{pipeline}: no scheduled interval starts in {from_date} … {to_date}")
    if len(wanted) > MAX_BACKFILL_RUNS:
        raise fail(
            f"{len(wanted)} intervals of pipelines.{pipeline}'s schedule start in {from_date} …"
            f" {to_date}: more than {MAX_BACKFILL_RUNS} runs at once; narrow --from/--to"
        )
    url = _require_server()
    import httpx
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    from orchestration.prefect.server import api_error

    queued = 0
    try:
        with get_client(sync_client=True) as client:
            try:
                deployment = client.read_deployment_by_name(f"{pipeline}/{target}")
            except ObjectNotFound:
                raise fail(
                    f"no deployment {pipeline}/{target}: run `elt prefect deploy` first"
                ) from None
            for start, end in wanted:
                client.create_flow_run_from_deployment(
                    deployment.id,
                    parameters={
                        "data_interval_start": start.isoformat(),
                        "data_interval_end": end.isoformat(),
                    },
                    name=f"backfill-{start:%Y-%m-%dT%H%M}",
                    tags=["backfill"],
                )
                queued += 1
                console.print(
                    f"[green]✓[/] {pipeline}: {start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M}"
                )
    except httpx.HTTPError as exc:
        rest = wanted[min(queued, len(wanted) - 1)][0]
        raise fail(
            f"the Prefect API at {url} failed ({api_error(exc)}); {queued} of {len(wanted)}"
            f" backfill run(s) of {pipeline} queued. Check the server (its log, load), then run"
            f" `elt prefect backfill {pipeline} --from {rest:%Y-%m-%d} --to {to_date}`"
        ) from None
    console.print(f"{len(wanted)} flow run(s) queued on deployment {pipeline}/{target}")


# -- local server and worker --------------------------------------------------------------


def _exec(args: list[str], env: dict[str, str] | None = None) -> None:
    prepare()
    executable = str(Path(sys.executable).with_name("prefect"))
    # replaces this process by design
    os.execve(executable, [executable, *args], env or dict(os.environ))  # noqa: S606


@app.command()
def server(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 4200,
    ui: Annotated[bool, typer.Option(help="Serve the Prefect UI too.")] = True,
) -> None:
    """Start a Prefect server on 127.0.0.1 with its database under .elt/prefect."""
    console.print(f"export PREFECT_API_URL=http://127.0.0.1:{port}/api")
    ui_flag = "--ui" if ui else "--no-ui"
    _exec(["server", "start", "--host", "127.0.0.1", "--port", str(port), ui_flag])


@app.command()
def worker(
    target: Annotated[str, typer.Option(help="local (process pool).")] = "local",
    name: Annotated[
        str | None,
        typer.Option(
            help="Worker name; runs its flow runs with an empty state folder of its own"
            " (.elt/prefect/workers/NAME), as on another machine."
        ),
    ] = None,
) -> None:
    """Start a worker that runs the `local` deployments (process work pool elt-local).

    Start several with different --name values to spread flow runs over them; the pools'
    concurrency limits hold across all of them (they live on the server).
    """
    if target != "local":
        raise fail("only the local process pool has a worker here; Kubernetes runs its own")
    load_config()  # validated, and the local source settings loaded for the flow runs
    url = _require_server()
    _ensure_work_pool("local")
    args = ["worker", "start", "--pool", deployments.LOCAL_POOL, "--type", "process"]
    if name is None:
        _exec(args)
        return
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
        raise fail(f"--name {name!r}: use letters, digits, '-' or '_' (it names a folder)")
    from elt import scratch

    folder = paths.state_dir() / "prefect" / "workers" / name
    env = {
        **scratch.without_machine_state(dict(os.environ)),
        **scratch.worker_env(folder, settings.warehouse()),
        "PREFECT_API_URL": url,  # the scratch PREFECT_HOME has no profile naming it
    }
    os.chdir(folder)
    _exec([*args, "--name", name], env)
