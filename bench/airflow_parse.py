"""Airflow: DAG file parse time, and a whole DAG run next to ``elt run`` (issue 6).

    .venv/bin/python bench/airflow_parse.py [--repeats 3] [--models 200]
    .venv/bin/python bench/airflow_parse.py --e2e PIPELINE [--repeats 3]
    .venv/bin/python bench/airflow_parse.py --e2e jaffle_daily --own-demo 0.1   # make bench

Parse: the DAG file (``orchestration/airflow/dags/elt_pipelines.py``) is executed in a fresh
process with Airflow imported, its plugins loaded and the ``airflow.*`` modules the file
imports pre-imported, as in the DAG processor (``parsing_pre_import_modules``), for (a) the
demo project and (b) a generated dbt project of ``--models`` models (two tests each), each
next to a file of EmptyOperators with exactly the same task ids and dependencies. Targets:
< 2 s, and at most 3x the empty-operator file. No warehouse is needed (``dbt parse`` does
not connect).

E2E: ``elt run PIPELINE`` and ``elt airflow test PIPELINE`` (one ``dag.test()`` run of the
same pipeline, tasks one at a time) alternately, on the current project state (run
``elt demo-data`` first), or with ``--own-demo YEARS`` in a state folder of its own
(``BENCH_HOME``) set up as ``bench/scheduled.py`` sets up its own: that many demo years,
``jaffle_daily`` alone, loaded once before the rounds. Targets: the whole command at most 1.5x
``elt run`` (issue 6) and 1.2x (issue 21, handed to ``make bench``'s Targets table).

Every sample is a new process without ``PYTHONDONTWRITEBYTECODE`` (with it, every process
recompiles Airflow, Cosmos and dbt from source); a first, discarded round warms the caches.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.stats import fmt_ratio, fmt_spread, markdown_table, ratio, summarize  # noqa: E402

DAG_FILE = ROOT / "orchestration" / "airflow" / "dags" / "elt_pipelines.py"
DUMMY_WAREHOUSE = "postgresql://bench:bench@127.0.0.1:9/bench"  # never connected to
TIMEOUT_S = 1800


# -- the child: parse one DAG file ----------------------------------------------------------


def child(path: Path, shape_out: Path | None) -> None:
    """Executed in a fresh process: import Airflow, then time executing the DAG file."""
    import importlib
    import importlib.util

    import airflow.sdk  # noqa: F401  (the DAG processor has Airflow imported already)
    from airflow.sdk import plugins_manager
    from airflow.utils.file import iter_airflow_imports

    # and its plugins loaded (Cosmos registers one): a long-lived process pays that once
    plugins_manager.get_hook_lineage_readers_plugins()
    # as the DAG processor does before it forks the parsing process
    # ([dag_processor] parsing_pre_import_modules, on by default): the `airflow.*` modules
    # the file imports at top level are imported already — for both files alike
    for name in iter_airflow_imports(str(path)):
        importlib.import_module(name)
    started = time.perf_counter()
    spec = importlib.util.spec_from_file_location("bench_dag_file", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    parse_s = time.perf_counter() - started
    dags = [v for v in vars(module).values() if type(v).__name__ == "DAG"]
    tasks = sum(len(dag.tasks) for dag in dags)
    if shape_out is not None:
        shape = {
            dag.dag_id: {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks} for dag in dags
        }
        shape_out.write_text(json.dumps(shape))
    print(json.dumps({"parse_s": parse_s, "dags": len(dags), "tasks": tasks}))


def _parse_once(path: Path, env: dict[str, str], shape_out: Path | None = None) -> dict:
    args = [sys.executable, __file__, "--child", str(path)]
    if shape_out is not None:
        args += ["--shape-out", str(shape_out)]
    started = time.perf_counter()
    done = subprocess.run(
        args, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"parsing {path} failed:\n{done.stderr[-3000:]}")
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "wall_s": wall}


# -- projects to parse ----------------------------------------------------------------------


def _env(project: Path, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(
        {
            "ELT_PROJECT_DIR": str(project),
            "ELT_HOME": str(home),
            "ELT_WAREHOUSE_URL": DUMMY_WAREHOUSE,
            "AIRFLOW_HOME": str(home / "airflow"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__COSMOS__CACHE_DIR": str(home / "cosmos"),
            "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
            "PYTHONPATH": str(ROOT),
        }
    )
    env.pop("ELT_CONFIG", None)
    return env


def _write_pipelines(project: Path, select: list[str]) -> None:
    (project / "pipelines.yml").write_text(
        textwrap.dedent(
            f"""\
            version: 1
            sources:
              shop:
                type: sql_database
                credentials: env:SHOP_DB_URL
                tables: {{orders: {{primary_key: id}}, customers: {{primary_key: id}}}}
            pipelines:
              bench:
                schedule: "@daily"
                sources: [shop]
                dbt: {{select: {json.dumps(select)}}}
            """
        )
    )


def generate_dbt_project(project: Path, models: int) -> None:
    """A dbt project of ``models`` views in 10 layers (each from two models of the layer
    before), each model with two tests that pass when it is built."""
    dbt = project / "dbt_project"
    (dbt / "models").mkdir(parents=True)
    (dbt / "dbt_project.yml").write_text(
        "name: bench\nversion: '1.0'\nprofile: bench\nmodel-paths: [models]\n"
        "models:\n  bench:\n    +materialized: view\n"
    )
    (dbt / "profiles.yml").write_text(
        "bench:\n  target: audit\n  outputs:\n    audit:\n      type: postgres\n"
        "      host: 127.0.0.1\n      port: 9\n      user: bench\n      password: bench\n"
        "      dbname: bench\n      schema: audit\n      threads: 4\n"
    )
    per_layer = max(models // 10, 1)
    properties = ["version: 2", "models:"]
    for index in range(models):
        layer = index // per_layer
        if layer == 0:
            sql = f"select {index} as id, 'x' as name"
        else:
            parents = {(layer - 1) * per_layer + (index + k) % per_layer for k in (0, 1)}
            # `union` (not `union all`): two parents share ids, and the `unique` tests must
            # pass when the project is built (bench/prefect_vs_dbt.py --project generated)
            sql = " union ".join(f"select id, name from {{{{ ref('m{p}') }}}}" for p in parents)
        (dbt / "models" / f"m{index}.sql").write_text(sql + "\n")
        properties += [
            f"  - name: m{index}",
            "    columns:",
            "      - name: id",
            "        data_tests: [not_null, unique]",
        ]
    (dbt / "models" / "models.yml").write_text("\n".join(properties) + "\n")


def _parse_manifest(env: dict[str, str]) -> None:
    code = "from orchestration.airflow.manifest import parse_manifest; print(parse_manifest())"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"dbt parse failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")


def empty_operator_file(shape: dict[str, dict[str, list[str]]], path: Path) -> Path:
    """A DAG file of EmptyOperators with the same DAGs, task ids and dependencies."""
    lines = [
        '"""Empty operators shaped like the elt DAGs (bench baseline): airflow dag."""',
        "from datetime import datetime",
        "from airflow.sdk import DAG",
        "from airflow.providers.standard.operators.empty import EmptyOperator",
        "",
        f"SHAPE = {json.dumps(shape)}",
        "for dag_id, tasks in SHAPE.items():",
        "    with DAG(dag_id, schedule='@daily', start_date=datetime(2026, 1, 1)) as dag:",
        "        ops = {t: EmptyOperator(task_id=t) for t in tasks}",
        "        for t, ups in tasks.items():",
        "            for u in ups:",
        "                ops[u] >> ops[t]",
        "    globals()[dag_id] = dag",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def measure_parse(label: str, project: Path, home: Path, repeats: int) -> dict:
    """Our DAG file vs the empty-operator file of the same shape, interleaved."""
    env = _env(project, home)
    _parse_manifest(env)
    shape_file = home / "shape.json"
    _parse_once(DAG_FILE, env, shape_file)  # warm-up: bytecode, Cosmos cache
    shape = json.loads(shape_file.read_text())
    empty = empty_operator_file(shape, home / "empty_dag.py")
    _parse_once(empty, env)
    ours, base, walls = [], [], []
    for _ in range(repeats):
        sample = _parse_once(DAG_FILE, env)
        ours.append(sample["parse_s"])
        walls.append(sample["wall_s"])
        base.append(_parse_once(empty, env)["parse_s"])
    tasks = sum(len(t) for t in shape.values())
    return {"label": label, "tasks": tasks, "ours": ours, "empty": base, "process_wall": walls}


def parse_report(results: list[dict]) -> str:
    """Markdown table: parse times and ratios."""
    rows = []
    for r in results:
        ours, empty = summarize(r["ours"]), summarize(r["empty"])
        rows.append(
            [
                r["label"],
                str(r["tasks"]),
                fmt_spread(ours),
                fmt_spread(empty),
                fmt_ratio(ratio(ours.median, empty.median)),
                fmt_spread(summarize(r["process_wall"])),
            ]
        )
    headers = [
        "project",
        "tasks",
        "elt DAG file, s",
        "EmptyOperators, s",
        "ratio",
        "whole process, s",
    ]
    return markdown_table(headers, rows)


# -- end to end ----------------------------------------------------------------------------


def _timed(args: list[str], base: dict[str, str] | None = None) -> tuple[float, str]:
    env = {k: v for k, v in (base or os.environ).items() if k != "PYTHONDONTWRITEBYTECODE"}
    started = time.perf_counter()
    done = subprocess.run(
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )
    took = time.perf_counter() - started
    if done.returncode != 0:
        log = Path(tempfile.gettempdir()) / "airflow-e2e-failed.log"
        log.write_text(done.stdout + done.stderr)
        raise RuntimeError(f"{' '.join(args)} failed; its whole output is in {log}")
    return took, done.stdout


E2E_TARGET = 1.2  # issue 21: `elt airflow test` at most 1.2× `elt run`


def measure_e2e(pipeline: str, repeats: int, env: dict[str, str] | None = None) -> str:
    """``elt run`` and ``elt airflow test`` alternately (the first round is discarded), in
    ``env`` (default: this process's environment); the issue-21 verdict goes to the harness."""
    import re

    from bench.results import verdict, write_verdicts

    elt = str(Path(sys.executable).with_name("elt"))
    airflow_test = [sys.executable, "-m", "orchestration.airflow.cli", "test", pipeline]
    plain, dag, dag_only = [], [], []
    for round_ in range(repeats + 1):
        a, _ = _timed([elt, "run", pipeline], env)
        b, out = _timed(airflow_test, env)
        if round_:
            plain.append(a)
            dag.append(b)
            found = re.search(r"DAG run ([\d.]+) s", out)
            dag_only.append(float(found.group(1)) if found else b)
    p, d, r = summarize(plain), summarize(dag), summarize(dag_only)
    text = f"`elt airflow test` ≤ {E2E_TARGET}× `elt run`, whole pipeline {pipeline}"
    write_verdicts([verdict(text, ratio(d.median, p.median), "<=", E2E_TARGET)])
    rows = [
        ["`elt run`, whole command", fmt_spread(p), "1.00"],
        ["`elt airflow test`, whole command", fmt_spread(d), fmt_ratio(ratio(d.median, p.median))],
        [
            "… of which the DAG run (`dag.test()`)",
            fmt_spread(r),
            fmt_ratio(ratio(r.median, p.median)),
        ],
    ]
    return markdown_table([pipeline, "wall, s", "vs elt run"], rows)


def main() -> None:
    """Command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child")
    parser.add_argument("--shape-out")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--e2e", metavar="PIPELINE")
    parser.add_argument(
        "--own-demo", type=float, metavar="YEARS", help="with --e2e: a demo state folder of its own"
    )
    args = parser.parse_args()
    if args.child:
        child(Path(args.child), Path(args.shape_out) if args.shape_out else None)
        return
    if args.e2e and args.own_demo:
        from bench.scheduled import demo_home

        with demo_home(args.own_demo) as env:
            print(measure_e2e(args.e2e, args.repeats, env))
        return
    if args.e2e:
        print(measure_e2e(args.e2e, args.repeats))
        return
    with tempfile.TemporaryDirectory(prefix="airflow-parse-") as tmp:
        scratch = Path(tmp)
        demo = scratch / "demo"
        demo.mkdir()
        (demo / "dbt_project").symlink_to(ROOT / "dbt_project")
        _write_pipelines(demo, ["+marts"])
        synthetic = scratch / "synthetic"
        generate_dbt_project(synthetic, args.models)
        _write_pipelines(synthetic, [])
        results = [
            measure_parse("demo (jaffle-shop)", demo, scratch / "demo-home", args.repeats),
            measure_parse(
                f"generated, {args.models} models",
                synthetic,
                scratch / "synthetic-home",
                args.repeats,
            ),
        ]
    print(parse_report(results))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
