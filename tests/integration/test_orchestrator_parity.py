"""Parity: every pipeline of pipelines.yml runs the same under Airflow and under Prefect.

For each pipeline, derived from both orchestrators (never from ``elt.spec`` alone):

* the steps and their order: Airflow from the built DAG's tasks, task groups and edges;
  Prefect from the task runs of a real flow run and the ``wait_for`` inputs they recorded;
* the dbt nodes and their dependencies: Airflow from the Cosmos tasks (their dbt node and
  upstream tasks) and the nodes the gate expects; Prefect from the node task runs of the flow
  run and the upstream task runs each one waited for;
* the outcome: each orchestrator runs the pipeline on the same demo sources, from an empty
  warehouse, and the published schemas are compared row by row, as are the dbt results and
  the alerts they sent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tests.helpers.orchestrators import (
    ALERT_EVERYTHING,
    airflow,
    isolated_env,
    project_document,
    query,
)
from tests.helpers.prefect_api import (
    PrefectEnv,
    prefect_client_of,
    prefect_env_vars,
    settled_task_runs,
)
from tests.helpers.process_env import environ
from tests.helpers.warehouse import reset_warehouse

pytestmark = pytest.mark.integration

WAREHOUSE_DB = "parity_wh"
SHOP_DB = "parity_shop"
# columns that name the dlt load a row came from: a new load id per run, by design
LOAD_LINEAGE_COLUMNS = {"load_id", "loaded_at", "_dlt_load_id", "_dlt_id"}
AIRFLOW_ONLY_TASKS = {"start_run"}  # Airflow's setup task; a Prefect flow run opens the run
STEP_TASKS = {"quality_gate", "publish", "export", "notify"}
DBT_GROUP = "dbt."  # the Cosmos task group, and a group per model inside it
DBT_FOLDERS = {"DBT_TARGET_PATH": "target", "DBT_LOG_PATH": "logs"}


def _test_config() -> dict:
    """The project's pipelines, each alerting on every event (the alerts are compared)."""
    document = project_document()
    for pipe in document["pipelines"].values():
        pipe["notify"] = {"on": ALERT_EVERYTHING, "urls": ["env:ALERT_URL"]}
    return document


@dataclass
class RunOutcome:
    """What one orchestrator's run of a pipeline left behind."""

    marts: dict[str, list[tuple]]
    dbt_results: dict[str, str]  # unique id → status
    alerts: list[str]
    task_runs: list[dict] = field(default_factory=list)  # Prefect only


@dataclass
class Parity:
    """The module's environment, both orchestrators' graphs and runs of every pipeline."""

    env: PrefectEnv
    pipelines: list[str]
    dags: dict[str, dict]
    manifest: dict
    airflow_runs: dict[str, RunOutcome]
    prefect_runs: dict[str, RunOutcome]


# -- what a run published -----------------------------------------------------------------


def published_marts(url: str) -> dict[str, list[tuple]]:
    """Every table of the published schema, rows ordered by all columns, load ids left out."""
    from elt import settings

    schema = settings.published_schema()
    tables = [
        name
        for (name,) in query(
            url,
            "select table_name from information_schema.tables where table_schema = %s"
            " order by table_name",
            (schema,),
        )
    ]
    marts = {}
    for table in tables:
        columns = [
            name
            for (name,) in query(
                url,
                "select column_name from information_schema.columns where table_schema = %s"
                " and table_name = %s order by ordinal_position",
                (schema, table),
            )
            if name not in LOAD_LINEAGE_COLUMNS
        ]
        listed = ", ".join(f'"{c}"' for c in columns)
        order = ", ".join(str(i + 1) for i in range(len(columns)))
        marts[table] = query(url, f'select {listed} from "{schema}"."{table}" order by {order}')
    return marts


def dbt_results(url: str, pipeline: str) -> dict[str, str]:
    """unique id → status of the pipeline's only run in ``elt_meta``."""
    return dict(
        query(
            url,
            "select d.unique_id, d.status from elt_meta.dbt_results d"
            " join elt_meta.runs r using (run_id) where r.pipeline = %s",
            (pipeline,),
        )
    )


def alert_texts(alerts: list[dict]) -> list[str]:
    """Title and message of each alert, without what differs per run (ids, durations)."""
    texts = []
    for alert in alerts:
        text = f"{alert['title']}\n{alert['message']}"
        text = re.sub(r"\(\d+(\.\d+)? s\)", "(… s)", text)
        texts.append(re.sub(r"run \S+", "run …", text))
    return texts


# -- running both -------------------------------------------------------------------------


def _run_airflow(env: PrefectEnv, pipeline: str) -> RunOutcome:
    reset_warehouse(env.warehouse_url)
    env.webhook.take()
    outcome = airflow("run", pipeline)
    not_done = {task: state for task, state in outcome["task_states"].items() if state != "success"}
    assert "success" in outcome["state"] and not not_done, not_done
    return RunOutcome(
        marts=published_marts(env.warehouse_url),
        dbt_results=dbt_results(env.warehouse_url, pipeline),
        alerts=alert_texts(env.webhook.take()),
    )


def _run_prefect(env: PrefectEnv, pipeline: str) -> RunOutcome:
    from elt.config import load
    from orchestration.prefect.factory import build_flow

    reset_warehouse(env.warehouse_url)
    env.webhook.take()
    # dbt's target folder of this module (Cosmos' producer must keep its own: not for Airflow)
    with environ({key: str(env.home / "dbt" / folder) for key, folder in DBT_FOLDERS.items()}):
        state = build_flow(load(env.config_file), pipeline)(return_state=True)
    assert state.is_completed(), state.message
    results = dbt_results(env.warehouse_url, pipeline)
    steps = query(env.warehouse_url, "select count(*) from elt_meta.steps")[0][0]
    flow_run_id = str(state.state_details.flow_run_id)
    return RunOutcome(
        marts=published_marts(env.warehouse_url),
        dbt_results=results,
        alerts=alert_texts(env.webhook.take()),
        task_runs=settled_task_runs(env, flow_run_id, steps + len(results)),
    )


@pytest.fixture(scope="module")
def parity(pg, prefect_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Parity]:
    """Both orchestrators' view of every pipeline, and one run of each on the same input."""
    home = tmp_path_factory.mktemp("parity-elt")
    config = _test_config()
    with (
        isolated_env(
            pg,
            home,
            warehouse_db=WAREHOUSE_DB,
            shop_db=SHOP_DB,
            config=config,
            extra_env={k: v for k, v in prefect_env_vars(home).items() if k not in DBT_FOLDERS},
        ) as base,
        prefect_client_of(prefect_server) as api_url,
    ):
        from orchestration.airflow import manifest

        manifest.parse_manifest()
        airflow("migrate")
        env = PrefectEnv(**vars(base), api_url=api_url)
        pipelines = list(config["pipelines"])
        parity = Parity(
            env=env,
            pipelines=pipelines,
            dags=airflow(module="tests.helpers.airflow_graph"),
            manifest=json.loads(manifest.manifest_path().read_text()),
            airflow_runs={name: _run_airflow(env, name) for name in pipelines},
            prefect_runs={name: _run_prefect(env, name) for name in pipelines},
        )
        yield parity


# -- the two graphs -----------------------------------------------------------------------


def _closure(edges: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Every (a, b) with a path from a to b."""
    before = set(edges)
    for _ in range(len(edges) + 1):  # bounded: each pass adds paths one edge longer
        longer = {(a, d) for a, b in before for c, d in before if b == c}
        if longer <= before:
            return before
        before |= longer
    return before


def airflow_step(task_id: str, task: dict) -> str | None:
    """The plan step an Airflow task belongs to (None for Airflow's own setup task)."""
    if task_id in AIRFLOW_ONLY_TASKS:
        return None
    if task["group"] == "ingest":
        return f"ingest_{task_id.split('.', 1)[1]}"
    if task_id.startswith(DBT_GROUP):
        return "dbt_build"
    assert task_id in STEP_TASKS, f"unexpected Airflow task {task_id}"
    return task_id


def airflow_steps(dag: dict) -> tuple[set[str], set[tuple[str, str]]]:
    """The DAG's steps and their order (step a before step b), from its tasks and edges."""
    tasks = dag["tasks"]
    steps = {airflow_step(t, v) for t, v in tasks.items()} - {None}
    edges = set()
    for task_id, task in tasks.items():
        step = airflow_step(task_id, task)
        for upstream in task["upstream"]:
            before = airflow_step(upstream, tasks[upstream])
            if step and before and before != step:
                edges.add((before, step))
    return steps, _closure(edges)


def prefect_steps(task_runs: list[dict]) -> tuple[set[str], set[tuple[str, str]]]:
    """The flow run's steps (its top-level task runs) and their order, from the task runs
    each one waited for."""
    top = {run["id"]: run for run in task_runs if not run["task_inputs"].get("__parents__")}
    edges = set()
    for run in top.values():
        for upstream in run["task_inputs"].get("wait_for", []):
            edges.add((top[upstream["id"]]["name"], run["name"]))
    return {run["name"] for run in top.values()}, _closure(edges)


def node_ids(manifest: dict) -> dict[tuple[str, str], str]:
    """(resource type, name) → unique id, for every dbt node and unit test."""
    found = {}
    for section in ("nodes", "unit_tests"):
        for unique_id, node in manifest.get(section, {}).items():
            found[(node["resource_type"], node["name"])] = unique_id
    return found


def prefect_nodes(task_runs: list[dict], manifest: dict) -> dict[str, set[str]]:
    """dbt node → the dbt nodes whose task runs its task run waited for."""
    ids = node_ids(manifest)
    nested = {run["id"]: run for run in task_runs if run["task_inputs"].get("__parents__")}

    def node(run: dict) -> str:
        resource_type, name = run["name"].split(" ", 1)
        return ids[(resource_type, name)]

    return {
        node(run): {node(nested[up["id"]]) for up in run["task_inputs"].get("wait_for", [])}
        for run in nested.values()
    }


def airflow_nodes(dag: dict) -> dict[str, set[str]]:
    """dbt model/seed/snapshot → the dbt nodes its Cosmos task runs after (a model's
    ``test`` task stands for that model, tested)."""
    tasks = dag["tasks"]
    nodes = {}
    for task_id, task in tasks.items():
        if not task_id.startswith(DBT_GROUP) or not task["node"] or task_id.endswith(".test"):
            continue
        nodes[task["node"]] = {
            tasks[up]["node"] for up in task["upstream"] if up.startswith(DBT_GROUP)
        } - {None}
    return nodes


def models_with_test_tasks(dag: dict) -> set[str]:
    """Models whose tests Cosmos runs in a ``test`` task of their own."""
    return {t["node"] for t_id, t in dag["tasks"].items() if t_id.endswith(".test")}


# -- tests --------------------------------------------------------------------------------


def test_same_steps_in_the_same_order(parity: Parity):
    for pipeline in parity.pipelines:
        a_steps, a_order = airflow_steps(parity.dags[pipeline])
        p_steps, p_order = prefect_steps(parity.prefect_runs[pipeline].task_runs)
        assert a_steps == p_steps, pipeline
        assert a_order == p_order, pipeline
        assert ("dbt_build", "publish") in a_order  # the order is there, not vacuous
        assert all(("ingest_" + s, "dbt_build") in a_order for s in ("shop", "social", "landing"))


def test_same_dbt_nodes_with_the_same_dependencies(parity: Parity):
    for pipeline in parity.pipelines:
        dag = parity.dags[pipeline]
        prefect = prefect_nodes(parity.prefect_runs[pipeline].task_runs, parity.manifest)
        airflow_expected = set(dag["gate_expects"])
        # Cosmos does not render unit tests: they run inside its one dbt build
        prefect_rendered = {n for n in prefect if not n.startswith("unit_test.")}
        assert prefect_rendered == airflow_expected, pipeline
        assert len(airflow_expected) > 50

        # models, seeds, snapshots: the same upstream nodes
        built = airflow_nodes(dag)
        assert built.keys() == {n for n in prefect_rendered if not n.startswith("test.")}
        mismatched = {n: (built[n], prefect[n]) for n in built if built[n] != prefect[n]}
        assert not mismatched, mismatched
        assert sum(bool(up) for up in built.values()) >= 8  # there are dependencies

        # tests run after the models they test: a model's Cosmos `test` task, Prefect's
        # test task runs waiting for that model
        tests = {n: up for n, up in prefect.items() if n.startswith("test.")}
        assert all(up for up in tests.values()), tests
        tested = set().union(*tests.values())
        assert tested == models_with_test_tasks(dag), pipeline


def test_same_dbt_results(parity: Parity):
    for pipeline in parity.pipelines:
        airflow_results = parity.airflow_runs[pipeline].dbt_results
        prefect_results = parity.prefect_runs[pipeline].dbt_results
        assert airflow_results == prefect_results, pipeline
        # unit tests ran under both (inside Cosmos' build; as task runs under Prefect)
        assert any(uid.startswith("unit_test.") for uid in airflow_results)


def test_same_published_marts_row_by_row(parity: Parity):
    for pipeline in parity.pipelines:
        airflow_marts = parity.airflow_runs[pipeline].marts
        prefect_marts = parity.prefect_runs[pipeline].marts
        assert airflow_marts.keys() == prefect_marts.keys(), pipeline
        assert {"orders", "customers", "products"} <= airflow_marts.keys()
        for table, rows in airflow_marts.items():
            assert rows, f"{pipeline}: {table} is empty"
            assert rows == prefect_marts[table], f"{pipeline}: {table} differs"


def test_same_alerts(parity: Parity):
    for pipeline in parity.pipelines:
        airflow_alerts = parity.airflow_runs[pipeline].alerts
        assert airflow_alerts and airflow_alerts == parity.prefect_runs[pipeline].alerts
