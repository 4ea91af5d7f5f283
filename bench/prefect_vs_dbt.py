"""Benchmark: the Prefect flow and the Airflow DAG of a pipeline vs plain `dbt build`.

    .venv/bin/python bench/prefect_vs_dbt.py [--repeats 3] [--years 0.25] [--variants …]

Setup (not timed): a state folder (`$BENCH_HOME`, default `.elt/bench/prefect`) with its own
embedded warehouse, the demo sources ingested once, a local Prefect server, the dbt manifest
and Airflow's metadata database, and one warm-up build (dbt's partial parse and the
incremental models' first build). Then, interleaved, `--repeats` times each:

* ``dbt``: the `dbt build` command, in its own process;
* ``elt``: `elt run` of a dbt-only pipeline (dbt build → gate → publish → notify), no orchestrator;
* ``prefect``: the Prefect flow of that pipeline, as deployed (``DbtOptions()``: node task runs
  in the dbt_build task's context, no dbt assets, dbt logs at warn);
* ``airflow``: the Airflow DAG of that pipeline run by ``dag.test()`` (``elt airflow test``'s
  way: parse the DAGs folder, then every task in this process, Cosmos' producer running dbt);
* ``prefect-dbt-defaults`` (only when asked for with ``--variants``): the same flow with
  ``PrefectDbtRunner`` as prefect-dbt ships it (assets on, dbt logs at info, Prefect's
  context rebuilt per node).

Every variant runs in a fresh process (``bench.measure``): wall time of the process, peak
RSS of its process tree, and the run's own time beside it. Medians, and ratios to ``dbt``,
go to stdout as a Markdown table and to `results.json` in the state folder. The Prefect
server's memory is not counted (it is shared by every flow run, like a scheduler), nor is
Airflow's metadata database (SQLite, in the process).
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
VARIANTS = ("dbt", "elt", "prefect", "airflow", "prefect-dbt-defaults")
DEFAULT_VARIANTS = ("dbt", "elt", "prefect", "airflow")


def bench_home() -> Path:
    """The benchmark's own state folder (warehouse, sources, Prefect server, results)."""
    from elt import paths

    if os.environ.get("BENCH_HOME"):
        return Path(os.environ["BENCH_HOME"])
    return paths.project_root() / ".elt" / "bench" / "prefect"


def _bench_config(home: Path) -> Path:
    """The project's pipelines.yml plus a dbt-only pipeline with the demo's dbt selection."""
    import yaml

    from elt import paths

    document = yaml.safe_load(paths.config_file().read_text())
    dbt_spec = next(iter(document["pipelines"].values())).get("dbt", {})
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


def _measure(command: list[str], env: dict[str, str]) -> dict:
    """Run one variant in a fresh process: wall time, peak RSS of its tree, what it printed."""
    from bench.measure import run_command

    before = os.times()
    sample, stdout = run_command(command, env)
    after = os.times()
    # CPU time of the reaped child: less sensitive to other load on the machine than wall time
    cpu = (after.children_user + after.children_system) - (
        before.children_user + before.children_system
    )
    json_lines = [line for line in stdout.splitlines() if line.startswith("{")]
    inner = json.loads(json_lines[-1]) if json_lines else {}
    if inner.get("status", "succeeded") != "succeeded":
        raise RuntimeError(f"{command[-1]} did not succeed: {inner['status']}")
    return {"wall_s": sample.wall_s, "cpu_s": cpu, "peak_rss_mib": sample.peak_rss_mib, **inner}


def _commands(env: dict[str, str]) -> dict[str, list[str]]:
    from elt import paths

    project = str(paths.dbt_project_dir())
    dbt = str(Path(sys.executable).with_name("dbt"))
    me = [sys.executable, str(Path(__file__).resolve()), "--child"]
    return {
        "dbt": [dbt, "build", "--project-dir", project, "--profiles-dir", project, "--quiet"],
        "elt": [*me, "elt"],
        "prefect": [*me, "prefect"],
        "airflow": [*me, "airflow"],
        "prefect-dbt-defaults": [*me, "prefect-dbt-defaults"],
    }


def _setup(years: float) -> tuple[dict[str, str], object]:
    """State folder, warehouse, demo sources ingested once, Prefect server; returns the env."""
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
        "ELT_CONFIG": str(_bench_config(home)),
        "PREFECT_API_URL": prefect.api_url,
        "PREFECT_HOME": str(home / "prefect-client"),
        # the bench's own dbt target: partial parsing is not reset by other dbt runs in the tree
        # (the Airflow DAG reads its manifest from the same folder)
        "DBT_TARGET_PATH": str(home / "dbt" / "target"),
        "DBT_LOG_PATH": str(home / "dbt" / "logs"),
    }
    _prepare_airflow(env)
    return env, prefect


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
    print("| variant | wall s | × dbt | CPU s | × dbt | flow/run s | peak RSS MiB | × dbt |")
    print("|---|---|---|---|---|---|---|---|")
    for variant, runs in samples.items():
        wall = statistics.median(s["wall_s"] for s in runs)
        cpu = statistics.median(s["cpu_s"] for s in runs)
        rss = statistics.median(s["peak_rss_mib"] for s in runs)
        inner = [s["run_s"] for s in runs if "run_s" in s]
        inner_text = f"{statistics.median(inner):.1f}" if inner else "-"
        summary[variant] = {"wall_s": wall, "cpu_s": cpu, "peak_rss_mib": rss, "runs": runs}
        print(
            f"| {variant} | {wall:.1f} | {wall / base_wall:.2f} | {cpu:.1f} |"
            f" {cpu / base_cpu:.2f} | {inner_text} | {rss:.0f} | {rss / base_rss:.2f} |"
        )
    return summary


def main() -> None:
    """Parse arguments; run the benchmark (or, with --child, one variant)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--years", type=float, default=0.25, help="demo data size")
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS))
    parser.add_argument("--child", choices=[v for v in VARIANTS if v != "dbt"])
    args = parser.parse_args()
    if args.child:
        _child(args.child)
        return
    env, prefect = _setup(args.years)
    variants = args.variants.split(",")
    try:
        commands = _commands(env)
        _measure(commands["prefect"], env)  # warm-up: partial parse, first incremental build
        if "airflow" in variants:
            _measure(commands["airflow"], env)  # warm-up: Airflow's own first-run caches
        samples: dict[str, list[dict]] = {variant: [] for variant in variants}
        for repeat in range(args.repeats):
            for variant in variants:
                samples[variant].append(_measure(commands[variant], env))
                print(f"repeat {repeat + 1} {variant}: {samples[variant][-1]}", file=sys.stderr)
        summary = _report(samples)
        load = os.getloadavg()
        results = {"years": args.years, "repeats": args.repeats, "loadavg": load, **summary}
        (bench_home() / "results.json").write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nload average at the end: {load[0]:.1f} (cpus: {os.cpu_count()})")
    finally:
        prefect.stop()
        from elt import warehouse

        warehouse.stop()  # the bench's own embedded warehouse (its state folder)


if __name__ == "__main__":
    main()
