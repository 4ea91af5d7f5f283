"""One lifecycle, three ways: for the same pipeline and the same injected faults, `elt run`,
an Airflow DAG run and a Prefect flow run agree on retries, timeouts, duration limits, the
lease, depends_on and the run record; and a killed Airflow task or Prefect flow process
frees the pipeline and leaves its run closed as failed.

The pipeline is the demo's on a month of data; a fault ends a run early where it can.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from elt import paths
from tests.helpers.lifecycle import free_pipelines, hold, kill, start_serve
from tests.helpers.orchestrators import airflow, isolated_env, project_document, query
from tests.helpers.prefect_api import PrefectEnv, prefect_client_of, prefect_env_vars

pytestmark = pytest.mark.integration

EVERY_EVENT = ["failure", "quality_warning", "success", "limit_exceeded"]
ORCHESTRATORS = ("elt", "airflow", "prefect")
DBT_FOLDERS = {"DBT_TARGET_PATH", "DBT_LOG_PATH"}
WAIT_S = 240.0
TIMEOUT_S = 10  # tiny_slow's step timeout


def _config() -> dict:
    document = project_document()
    # the demo pipeline on a month of data, retrying quickly, alerting on every event, with a
    # run duration limit every run breaches
    tiny = {
        **document["pipelines"]["jaffle_daily"],
        "schedule": None,
        "retries": {"count": 2, "delay": "1s"},
        "notify": {"on": EVERY_EVENT, "urls": ["env:ALERT_URL"]},
        "limits": {"max_duration": "1s"},
        "export": None,
    }
    document["pipelines"] = {
        "tiny": tiny,
        # only the source whose ingest hangs: no other step has to finish within the
        # timeout (a busy machine once took 30 s for the shop's ingest), so it can be short
        "tiny_slow": {**tiny, "sources": ["landing"], "execution_timeout": f"{TIMEOUT_S}s"},
        "tiny_after": {**tiny, "depends_on": ["tiny"]},
    }
    return document


@pytest.fixture(scope="module")
def env(pg, prefect_server: str, tmp_path_factory) -> Iterator[PrefectEnv]:
    home = tmp_path_factory.mktemp("lifecycle-parity")
    extra = {k: v for k, v in prefect_env_vars(home).items() if k not in DBT_FOLDERS}
    # `elt prefect serve` asks for the downstream's triggered run every second, not every 10
    extra["PREFECT_RUNNER_POLL_FREQUENCY"] = "1"
    with (
        isolated_env(
            pg,
            home,
            warehouse_db="lifecycle_parity_wh",
            shop_db="lifecycle_parity_shop",
            config=_config(),
            extra_env=extra,
        ) as base,
        prefect_client_of(prefect_server) as api_url,
    ):
        from elt import runs
        from orchestration.airflow import manifest

        manifest.parse_manifest()
        airflow("migrate")
        # the run tables exist before any run: a test run alone polls them from its start
        runs.migrate(base.warehouse_url)
        yield PrefectEnv(**vars(base), api_url=api_url)


@pytest.fixture(autouse=True)
def _fresh(env: PrefectEnv, monkeypatch) -> Iterator[None]:
    env.webhook.take()
    monkeypatch.delenv("ELT_FAILPOINTS", raising=False)
    yield
    free_pipelines(env.warehouse_url)


# -- one run of a pipeline, by each orchestrator -------------------------------------------


def _run_elt(pipeline: str) -> None:
    from elt.config import load
    from elt.runner import run_pipeline

    run_pipeline(load(), pipeline)


def _run_airflow(pipeline: str) -> None:
    airflow("run", pipeline)


def _run_prefect(pipeline: str) -> None:
    from elt.config import load
    from orchestration.prefect.factory import build_flow

    build_flow(load(), pipeline)(return_state=True)


RUNNERS: dict[str, Callable[[str], None]] = {
    "elt": _run_elt,
    "airflow": _run_airflow,
    "prefect": _run_prefect,
}


def _latest(env: PrefectEnv, pipeline: str, orchestrator: str) -> tuple[str, str, str | None]:
    return query(
        env.warehouse_url,
        "select run_id, status, error from elt_meta.runs where pipeline = %s"
        " and orchestrator = %s order by started_at desc limit 1",
        (pipeline, orchestrator),
    )[0]


def _step(env: PrefectEnv, run_id: str, step_id: str) -> tuple[str, dict]:
    return query(
        env.warehouse_url,
        "select status, detail from elt_meta.steps where run_id = %s and step_id = %s",
        (run_id, step_id),
    )[0]


def _each(env: PrefectEnv, pipeline: str, faults: dict | None = None) -> dict[str, dict]:
    """Run ``pipeline`` under every orchestrator with ``faults``; what each recorded."""
    outcome = {}
    for orchestrator in ORCHESTRATORS:
        os.environ["ELT_FAILPOINTS"] = json.dumps(faults or {})
        env.webhook.take()
        RUNNERS[orchestrator](pipeline)
        run_id, status, error = _latest(env, pipeline, orchestrator)
        published = None
        if query(env.warehouse_url, "select to_regclass('analytics.orders') is not null")[0][0]:
            published = query(
                env.warehouse_url, "select count(*), sum(order_total) from analytics.orders"
            )[0]
        outcome[orchestrator] = {
            "run_id": run_id,
            "status": status,
            "error": error,
            "alerts": [alert["title"] for alert in env.webhook.take()],
            "published_orders": published,  # (rows, total) after this run
        }
    return outcome


@pytest.fixture(scope="module")
def retried(env) -> dict[str, dict]:
    """Each orchestrator's run of a pipeline whose first ingest fails twice, then passes."""
    return _each(env, "tiny", {"ingest_landing": {"fail_attempts": 2}})


def test_retries_agree(env, retried):
    for orchestrator, run in retried.items():
        assert (run["status"], run["error"]) == ("succeeded", None), orchestrator
        status, detail = _step(env, run["run_id"], "ingest_landing")
        assert (status, detail["attempt"]) == ("succeeded", 3), orchestrator
        outcome = [t for t in run["alerts"] if "duration limit(s) exceeded" not in t]
        assert len(outcome) == 1 and "succeeded" in outcome[0], orchestrator
    published = {run["published_orders"] for run in retried.values()}
    assert len(published) == 1 and None not in published, retried


def test_duration_limits_agree(retried):
    for orchestrator, run in retried.items():
        limit = [t for t in run["alerts"] if "duration limit(s) exceeded" in t]
        assert len(limit) == 1, (orchestrator, run["alerts"])


def test_timeouts_agree(env):
    outcome = _each(env, "tiny_slow", {"ingest_landing": {"sleep_s": 600}})
    for orchestrator, run in outcome.items():
        assert run["status"] == "failed", orchestrator
        assert run["error"] == f"ingest_landing: timed out after {TIMEOUT_S} s", orchestrator
        status, detail = _step(env, run["run_id"], "ingest_landing")
        assert (status, detail["attempt"], detail["timed_out"]) == ("failed", 1, True)
        assert any("failed" in title for title in run["alerts"]), orchestrator


@pytest.mark.parametrize("holder", ORCHESTRATORS)
def test_the_lease_refuses_every_kind_of_second_run(env, holder):
    process, _ = hold("tiny", holder)
    try:
        for orchestrator in ORCHESTRATORS:
            before = query(env.warehouse_url, "select count(*) from elt_meta.runs")[0][0]
            try:
                RUNNERS[orchestrator]("tiny")
            except Exception as exc:  # elt run raises; the orchestrators fail their run
                assert f"by {holder})" in str(exc), (orchestrator, exc)
            after = query(
                env.warehouse_url,
                "select count(*) from elt_meta.runs where status = 'succeeded'"
                " and orchestrator = %s and started_at > now() - interval '1 minute'",
                (orchestrator,),
            )[0][0]
            assert after == 0, f"{orchestrator} ran while {holder} held the pipeline"
            # a refused run records nothing, whichever orchestrator it came from
            assert query(env.warehouse_url, "select count(*) from elt_meta.runs")[0][0] == before
    finally:
        kill(process)


def test_depends_on_runs_the_downstream_prefect_deployment_after_the_upstream_published(env):
    log = env.home / "serve.log"
    serve = start_serve(["tiny_after"], log)
    try:
        deadline = time.monotonic() + WAIT_S
        while not env.api("/deployments/filter", {"deployments": {"name": {"any_": ["serve"]}}}):
            assert serve.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(1)
        time.sleep(3)  # the automation of the deployment's trigger is created with it
        _run_prefect("tiny")
        upstream = _latest(env, "tiny", "prefect")
        assert upstream[1] == "succeeded"
        while True:  # bounded by the deadline
            found = query(
                env.warehouse_url,
                "select status, started_at > (select finished_at from elt_meta.runs"
                " where run_id = %s) from elt_meta.runs where pipeline = 'tiny_after'",
                (upstream[0],),
            )
            if found and found[0][0] != "running":
                break
            assert serve.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(2)
        assert found == [("succeeded", True)]
    finally:
        serve.terminate()
        serve.wait(timeout=60)


def _wait_free(env: PrefectEnv, run: Callable[[str], None], pipeline: str) -> float:
    """Run ``pipeline`` as soon as the lease lets it (bounded); returns when (monotonic) the
    attempt that got the lease started, so a slow run itself never counts as waiting."""
    from elt.lease import PipelineBusyError

    deadline = time.monotonic() + 60
    while True:
        attempt = time.monotonic()
        try:
            run(pipeline)
            return attempt
        except PipelineBusyError:
            assert time.monotonic() < deadline, "the dead run's lease was never freed"
            time.sleep(1)


@pytest.mark.parametrize("orchestrator", ["airflow", "prefect"])
def test_a_killed_task_or_flow_process_frees_the_pipeline_and_the_next_run_is_exact(
    env, orchestrator
):
    command = {
        "airflow": ["-m", "orchestration.airflow.testing", "run", "tiny"],
        "prefect": ["orchestration/prefect/flows.py", "tiny"],
    }[orchestrator]
    faults = {"dbt_build": {"sleep_s": 300}}
    # the Airflow run keeps its lease between tasks for ELT_LEASE_TASK_GAP_S: a short one here
    lease_env = {"ELT_LEASE_TASK_GAP_S": "5", "ELT_LEASE_TTL_S": "3"}
    process = subprocess.Popen(
        [sys.executable, *command],
        cwd=paths.project_root(),
        env={**os.environ, **lease_env, "ELT_FAILPOINTS": json.dumps(faults)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + WAIT_S
    while True:  # until the run has loaded the files and is inside dbt_build
        done = query(
            env.warehouse_url,
            "select count(*) from elt_meta.steps s join elt_meta.runs r using (run_id)"
            " where r.orchestrator = %s and r.status = 'running'"
            " and s.step_id = 'ingest_landing' and s.status = 'succeeded'",
            (orchestrator,),
        )[0][0]
        if done:
            break
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.5)
    time.sleep(2)
    kill(process)
    killed, status, _ = _latest(env, "tiny", orchestrator)
    started = time.monotonic()
    freed = _wait_free(env, _run_elt, "tiny")
    assert freed - started < 30  # the Airflow gap is 5 s here
    status, error = query(
        env.warehouse_url, "select status, error from elt_meta.runs where run_id = %s", (killed,)
    )[0]
    assert status == "failed" and error.startswith("process died"), error
    assert _latest(env, "tiny", "elt")[1] == "succeeded"
    # exact: the raw table holds each supply row of the landing files once
    raw = query(
        env.warehouse_url, "select count(*), count(distinct (id, sku)) from raw_landing.supplies"
    )[0]
    assert raw[0] == raw[1] > 0
