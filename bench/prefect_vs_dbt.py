"""Benchmark: the Prefect flow and the Airflow DAG of a pipeline vs plain `dbt build`.

    .venv/bin/python bench/prefect_vs_dbt.py [--repeats 3] [--years 0.25] [--variants …]
    .venv/bin/python bench/prefect_vs_dbt.py --project generated [--models 200]
    .venv/bin/python bench/prefect_vs_dbt.py --project generated --compare-with /tmp/main

``--project demo`` (default) builds the demo's dbt project (its ``+marts`` selection, 140
nodes) on the demo sources; ``--project generated`` builds the dbt project
``bench/airflow_parse.py`` generates (``--models`` views in 10 layers, two tests each), which
needs no sources.

Setup (not timed): a state folder (`$BENCH_HOME`, default `.elt/bench/prefect`) with its own
embedded warehouse, the demo sources ingested once (demo project only), a local Prefect
server, the dbt manifest and Airflow's metadata database, and one warm-up build (dbt's
partial parse and the incremental models' first build). Then, interleaved, `--repeats`
times each:

* ``dbt``: the `dbt build` command, in its own process;
* ``elt-build``: the `elt build` command (dbt build, then publish of the selection's marts);
* ``elt``: `elt run` of a dbt-only pipeline (dbt build → gate → publish → notify), no orchestrator;
* ``prefect``: the Prefect flow of that pipeline, as deployed (``DbtOptions()``: node task runs
  in the dbt_build task's context, no dbt assets, dbt logs at warn);
* ``airflow``: the Airflow DAG of that pipeline run by ``dag.test()`` (``elt airflow test``'s
  way: parse the DAGs folder, then every task in this process, Cosmos' producer running dbt);
* ``prefect-dbt-defaults`` (only when asked for with ``--variants``): the same flow with
  ``PrefectDbtRunner`` as prefect-dbt ships it (assets on, dbt logs at info, Prefect's
  context rebuilt per node).

Every variant runs in a fresh process (``bench.measure``): wall time of the process, peak
RSS of its process tree, and the run's own time beside it. Medians, ratios to ``dbt`` (and
the wall-time ratio to ``elt``), go to stdout as a Markdown table and to
`results-<project>.json` in the state folder. The Prefect server's memory is not counted (it
is shared by every flow run, like a scheduler), nor is Airflow's metadata database (SQLite,
in the process). The server's CPU time while a variant ran (and 2 s after, while it records
the last events) is its own column: it is not in the variant's CPU, but it shares the cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

PIPELINE = "bench_dbt"
VARIANTS = ("dbt", "elt-build", "elt", "prefect", "airflow", "prefect-dbt-defaults")
DEFAULT_VARIANTS = ("dbt", "elt-build", "elt", "prefect", "airflow")
PROJECTS = ("demo", "generated")
SERVER_SETTLE_S = 2.0


def bench_home() -> Path:
    """The benchmark's own state folder (warehouse, sources, Prefect server, results)."""
    from elt import paths

    if os.environ.get("BENCH_HOME"):
        return Path(os.environ["BENCH_HOME"])
    return paths.project_root() / ".elt" / "bench" / "prefect"


def generated_project(home: Path, models: int) -> Path:
    """The dbt project of ``bench/airflow_parse.py`` (``models`` models), made once in ``home``."""
    import shutil

    from bench.airflow_parse import generate_dbt_project

    root = home / f"generated-{models}"
    if not (root / "dbt_project" / "models" / "models.yml").is_file():
        shutil.rmtree(root, ignore_errors=True)  # a generation that was cut short
        generate_dbt_project(root, models)
    return root / "dbt_project"


def _bench_config(home: Path, dbt_dir: Path | None) -> Path:
    """The project's pipelines.yml with one dbt-only pipeline: the demo's dbt selection, or
    (``dbt_dir``) every node of that dbt project, also the top-level one (`elt build`)."""
    import yaml

    from elt import paths

    document = yaml.safe_load(paths.config_file().read_text())
    dbt_spec = next(iter(document["pipelines"].values())).get("dbt", {})
    if dbt_dir is not None:
        document["dbt"] = {**document.get("dbt", {}), "project_dir": str(dbt_dir)}
        dbt_spec = {"project_dir": str(dbt_dir)}
    document["pipelines"] = {
        PIPELINE: {"sources": [], "dbt": dbt_spec, "notify": {"on": ["failure"], "urls": []}}
    }
    path = home / "pipelines.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _airflow_child() -> tuple[str, dict[str, float]]:
    """``dag.test()`` of the pipeline's DAG, parsed from the DAGs folder as Airflow does."""
    from orchestration.airflow import testing

    started = time.monotonic()
    # Cosmos' producer fails when dbt's target folder is moved by the environment; the DAG
    # reads the manifest from .elt/dbt/target (`elt airflow parse-manifest`) regardless
    for key in ("DBT_TARGET_PATH", "DBT_LOG_PATH"):
        os.environ.pop(key, None)
    testing.configure(os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"))
    from elt import settings

    settings.apply_tool_env()
    dag = testing.load_dagbag().dags[PIPELINE]
    import_s = time.monotonic() - started
    outcome = testing.run_dag(dag)
    failed = sorted(task for task, state in outcome.task_states.items() if state != "success")
    status = "succeeded" if "success" in outcome.state and not failed else f"failed: {failed}"
    return status, {"import_s": import_s, "run_s": outcome.duration_s}


def _child(variant: str) -> None:
    """Run one variant in this (fresh) process; print its inner timings as JSON."""
    if variant == "airflow":
        status, extra = _airflow_child()
        print(json.dumps({"status": status, **extra}))
        return
    from elt.config import load

    config = load()
    started = time.monotonic()
    extra: dict[str, float] = {}
    if variant == "elt":
        from elt.runner import run_pipeline

        result = run_pipeline(config, PIPELINE)
        status = result.status
        extra["run_s"] = time.monotonic() - started
    else:
        from orchestration.prefect.environment import prepare

        prepare()
        from orchestration.prefect.factory import build_flow
        from orchestration.prefect.transform import DbtOptions

        stock = DbtOptions(assets=True, log_level="info", share_context=False)
        options = stock if variant == "prefect-dbt-defaults" else None
        flow = build_flow(config, PIPELINE, dbt_options=options)
        extra["import_s"] = time.monotonic() - started
        flow_started = time.monotonic()
        state = flow(return_state=True)
        extra["run_s"] = time.monotonic() - flow_started
        status = "succeeded" if state.is_completed() else f"failed: {state.message}"
    print(json.dumps({"status": status, **extra}))


def _server_cpu(pid: int | None) -> float:
    """CPU seconds used so far by the process tree of ``pid`` (the Prefect server)."""
    import psutil

    if pid is None:
        return 0.0
    total = 0.0
    try:
        root = psutil.Process(pid)
        members = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    for member in members:
        try:
            times = member.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def _measure(command: list[str], env: dict[str, str], server_pid: int | None = None) -> dict:
    """Run one variant in a fresh process: wall time, peak RSS of its tree, what it printed,
    and the CPU the Prefect server spent meanwhile (it shares the machine's cores)."""
    from bench.measure import run_command

    server_before = _server_cpu(server_pid)
    before = os.times()
    sample, stdout = run_command(command, env)
    after = os.times()
    time.sleep(SERVER_SETTLE_S)  # the server records a run's last events after it exits
    server_cpu = _server_cpu(server_pid) - server_before
    # CPU time of the reaped child: less sensitive to other load on the machine than wall time
    cpu = (after.children_user + after.children_system) - (
        before.children_user + before.children_system
    )
    json_lines = [line for line in stdout.splitlines() if line.startswith("{")]
    inner = json.loads(json_lines[-1]) if json_lines else {}
    if inner.get("status", "succeeded") != "succeeded":
        raise RuntimeError(f"{command[-1]} did not succeed: {inner['status']}")
    return {
        "wall_s": sample.wall_s,
        "cpu_s": cpu,
        "server_cpu_s": server_cpu,
        "peak_rss_mib": sample.peak_rss_mib,
        **inner,
    }


def _commands(dbt_dir: Path | None, code: Path | None = None) -> dict[str, list[str]]:
    """Each variant's command; ``code``: another checkout whose bench script runs the
    Python variants (its packages come first on ``PYTHONPATH``, see :func:`_base_commands`)."""
    from elt import paths
    from elt import project as dbt_project

    if dbt_dir is None:  # the demo's own profiles.yml, as a user runs dbt in dbt_project/
        project = str(paths.dbt_project_dir())
        dbt_args = ["--project-dir", project, "--profiles-dir", project]
    else:  # a project without a usable profile: the one elt generates for it
        dbt_args = dbt_project.load(dbt_dir).cli_args()
    bin_dir = Path(sys.executable).parent
    script = code / "bench" / "prefect_vs_dbt.py" if code else Path(__file__).resolve()
    me = [sys.executable, str(script), "--child"]
    return {
        "dbt": [str(bin_dir / "dbt"), "build", *dbt_args, "--quiet"],
        "elt-build": [str(bin_dir / "elt"), "build"],
        "elt": [*me, "elt"],
        "prefect": [*me, "prefect"],
        "airflow": [*me, "airflow"],
        "prefect-dbt-defaults": [*me, "prefect-dbt-defaults"],
    }


def _base_commands(
    dbt_dir: Path | None, code: Path, env: dict[str, str]
) -> dict[str, tuple[list[str], dict[str, str]]]:
    """``<variant>@base``: every variant but plain dbt, run by the code of another checkout
    (``--compare-with``) on the same project, warehouse and servers, for a before/after
    comparison in one run."""
    from elt import paths

    base_env = {**env, "PYTHONPATH": str(code), "ELT_PROJECT_DIR": str(paths.project_root())}
    return {
        f"{variant}@base": (command, base_env)
        for variant, command in _commands(dbt_dir, code).items()
        if variant != "dbt"
    }


def _setup(years: float, models: int | None) -> tuple[dict[str, str], object, Path | None]:
    """State folder, warehouse, demo sources ingested once (or the generated dbt project of
    ``models`` models), Prefect server; returns the env and the generated project."""
    from elt import paths

    sys.path.insert(0, str(paths.project_root()))  # `bench` as a package, run as a script
    home = bench_home()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["ELT_HOME"] = str(home)
    os.environ.pop("ELT_WAREHOUSE_URL", None)
    from elt import demo, settings
    from elt.config import load
    from ingestion.runner import ingest
    from orchestration.prefect import server

    settings.apply_tool_env()
    demo.prepare(years=years)
    settings.load_local_env()
    dbt_dir = generated_project(home, models) if models else None
    if dbt_dir is None:
        demo.start_api()
        try:
            project = load()
            for source in project.sources.values():
                ingest(source)
        finally:
            demo.stop_api()
    prefect = server.start(home / "prefect-server")
    # installed deployments have bytecode; without it every process recompiles dbt and dlt
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", None)  # Airflow's own under home
    env = {
        **os.environ,
        **settings.tool_env(),
        "ELT_CONFIG": str(_bench_config(home, dbt_dir)),
        "PREFECT_API_URL": prefect.api_url,
        "PREFECT_HOME": str(home / "prefect-client"),
        # the bench's own dbt target: partial parsing is not reset by other dbt runs in the tree
        # (the Airflow DAG reads its manifest from the same folder)
        "DBT_TARGET_PATH": str(home / "dbt" / "target"),
        "DBT_LOG_PATH": str(home / "dbt" / "logs"),
    }
    _prepare_airflow(env)
    return env, prefect, dbt_dir


def _prepare_airflow(env: dict[str, str]) -> None:
    """The dbt manifest the DAG is rendered from, and Airflow's metadata database."""
    import subprocess

    from elt import paths

    for step in (
        [sys.executable, "-m", "elt.cli", "airflow", "parse-manifest"],
        [sys.executable, "-m", "orchestration.airflow.testing", "migrate"],
    ):
        done = subprocess.run(
            step, env=env, cwd=paths.project_root(), capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(step[2:])} failed:\n{done.stderr[-3000:]}")


def _report(samples: dict[str, list[dict]]) -> dict:
    base_wall = statistics.median(s["wall_s"] for s in samples["dbt"])
    base_rss = statistics.median(s["peak_rss_mib"] for s in samples["dbt"])
    summary = {}
    base_cpu = statistics.median(s["cpu_s"] for s in samples["dbt"])
    elt_wall = statistics.median(s["wall_s"] for s in samples.get("elt") or samples["dbt"])
    print(
        "| variant | wall s | × dbt | × elt run | CPU s | × dbt | server CPU s | flow/run s"
        " | peak RSS MiB | × dbt |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for variant, runs in samples.items():
        wall = statistics.median(s["wall_s"] for s in runs)
        cpu = statistics.median(s["cpu_s"] for s in runs)
        rss = statistics.median(s["peak_rss_mib"] for s in runs)
        server = statistics.median(s.get("server_cpu_s", 0.0) for s in runs)
        inner = [s["run_s"] for s in runs if "run_s" in s]
        inner_text = f"{statistics.median(inner):.1f}" if inner else "-"
        summary[variant] = {
            "wall_s": wall,
            "cpu_s": cpu,
            "server_cpu_s": server,
            "peak_rss_mib": rss,
            "runs": runs,
        }
        print(
            f"| {variant} | {wall:.1f} | {wall / base_wall:.2f} | {wall / elt_wall:.2f}"
            f" | {cpu:.1f} | {cpu / base_cpu:.2f} | {server:.1f} | {inner_text}"
            f" | {rss:.0f} | {rss / base_rss:.2f} |"
        )
    return summary


# issue 21's targets, per project: (variant, against, bound, what the row says)
TARGETS = {
    "demo": [
        (
            "airflow",
            "elt",
            1.2,
            "`elt airflow test` (dag.test) ≤ 1.2× `elt run`, dbt-only demo pipeline",
        ),
        ("elt-build", "dbt", 1.05, "`elt build` ≤ 1.05× plain `dbt build`, demo project"),
    ],
    "generated": [
        ("airflow", "dbt", 1.5, "Airflow DAG run ≤ 1.5× plain `dbt build`, generated project"),
        ("prefect", "dbt", 1.3, "Prefect flow run ≤ 1.3× plain `dbt build`, generated project"),
        ("elt-build", "dbt", 1.05, "`elt build` ≤ 1.05× plain `dbt build`, generated project"),
    ],
}


def _write_verdicts(project: str, summary: dict) -> None:
    """Hand the project's targets (wall-time ratios of medians) to `make bench`'s table."""
    from bench.results import verdict, write_verdicts

    write_verdicts(
        [
            verdict(text, summary[variant]["wall_s"] / summary[against]["wall_s"], "<=", bound)
            for variant, against, bound, text in TARGETS[project]
            if variant in summary and against in summary
        ]
    )


def main() -> None:
    """Parse arguments; run the benchmark (or, with --child, one variant)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--years", type=float, default=0.25, help="demo data size")
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS))
    parser.add_argument("--project", choices=PROJECTS, default="demo", help="dbt project")
    parser.add_argument("--models", type=int, default=200, help="models of `generated`")
    parser.add_argument(
        "--compare-with",
        metavar="DIR",
        help="another checkout (e.g. `git worktree add DIR main`): its code runs every variant"
        " but dbt as `<variant>@base`, interleaved with ours",
    )
    parser.add_argument("--child", choices=[v for v in VARIANTS if v not in ("dbt", "elt-build")])
    args = parser.parse_args()
    if args.child:
        _child(args.child)
        return
    models = args.models if args.project == "generated" else None
    env, prefect, dbt_dir = _setup(args.years, models)
    variants = args.variants.split(",")
    try:
        commands = {name: (command, env) for name, command in _commands(dbt_dir).items()}
        warm = ["prefect", "airflow"]  # partial parse, first build; Airflow's first-run caches
        if args.compare_with:
            commands.update(_base_commands(dbt_dir, Path(args.compare_with).resolve(), env))
            variants = [name for v in variants for name in (v, f"{v}@base") if name in commands]
            warm += ["prefect@base", "airflow@base"]  # and the other checkout's bytecode
        for variant in warm:
            if variant in variants or variant == "prefect":
                _measure(*commands[variant], prefect.pid)
        samples: dict[str, list[dict]] = {variant: [] for variant in variants}
        start_load = os.getloadavg()
        for repeat in range(args.repeats):
            for variant in variants:
                samples[variant].append(_measure(*commands[variant], prefect.pid))
                print(f"repeat {repeat + 1} {variant}: {samples[variant][-1]}", file=sys.stderr)
        summary = _report(samples)
        _write_verdicts(args.project, summary)
        load = os.getloadavg()
        results = {
            "project": args.project,
            "models": models,
            "years": args.years,
            "repeats": args.repeats,
            "loadavg": {"start": start_load, "end": load},
            **summary,
        }
        path = bench_home() / f"results-{args.project}.json"
        path.write_text(json.dumps(results, indent=2) + "\n")
        print(
            f"\nproject: {args.project}{f' ({models} models)' if models else ''};"
            f" load average at the start {start_load[0]:.1f}, at the end {load[0]:.1f}"
            f" (cpus: {os.cpu_count()})"
        )
    finally:
        prefect.stop()
        from elt import warehouse

        warehouse.stop()  # the bench's own embedded warehouse (its state folder)


if __name__ == "__main__":
    main()
