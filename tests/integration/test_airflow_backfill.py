"""``elt airflow backfill`` through Airflow 3's scheduler: three daily intervals of the demo
shop, one run each, after a first full load; every run's ingest loads exactly the orders of
its interval (the orders keyed on ordered_at without lookback here, so the windows do not
overlap: each day's rows carry that day's load id), and the marts then equal those of one
full refresh. Running one interval again (``--rerun``: Airflow clears its whole DAG run)
loads it again and changes nothing: the producer builds once more and the node tasks report
that build.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from tests.helpers.airflow_api import AirflowApi
from tests.helpers.orchestrators import (
    busy_days,
    day_loads,
    isolated_env,
    orders_on,
    project_document,
    published_fingerprints,
    query,
    with_backfill_orders,
)
from tests.helpers.process_env import elt_command, free_port

pytestmark = pytest.mark.integration

PIPELINE = "jaffle_daily"
PARSE_TIMEOUT_S = 300
BACKFILL_TIMEOUT_S = 900


@pytest.fixture(scope="module")
def airflow_up(pg, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    """Demo sources, a local Airflow (LocalExecutor) on a fresh metadata database; stopped
    by PID afterwards."""
    home = tmp_path_factory.mktemp("airflow-backfill")
    document = project_document()
    pipe = document["pipelines"][PIPELINE]
    pipe["retries"] = {"count": 0, "delay": "1s"}
    pipe["notify"] = {"on": ["failure"], "urls": ["env:ALERT_URL"]}
    document["pipelines"] = {PIPELINE: pipe}
    with_backfill_orders(document)
    pg.create_database("airflow")
    extra = {"AIRFLOW_HOME": str(home / "airflow")}
    with isolated_env(
        pg,
        home,
        warehouse_db="backfill_wh",
        shop_db="backfill_shop",
        config=document,
        extra_env=extra,
    ) as env:
        from orchestration.airflow import local

        try:
            url = local.up(free_port(), progress=lambda _: None)
            api = AirflowApi(url)
            api.wait_for_dag(PIPELINE, PARSE_TIMEOUT_S)
            yield env, api
        finally:
            local.down()


def _backfill(*args: str) -> str:
    done = elt_command("airflow", "backfill", PIPELINE, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


# four DAG runs one after another and a full refresh: ~25 min on a busy 2-core machine
@pytest.mark.timeout(2700)
def test_backfill_loads_each_interval_exactly_and_the_marts_equal_a_full_refresh(airflow_up):
    env, api = airflow_up
    days = busy_days(env.shop_url)

    # a paused DAG's backfill runs wait; unpaused, its latest interval gets a run as well.
    # First everything, by hand: a window of orders alone breaks the items → orders
    # relationship test (items have no cursor), as it would in production
    api.call("PATCH", f"/dags/{PIPELINE}", {"is_paused": False})
    full = api.call("POST", f"/dags/{PIPELINE}/dagRuns", {"logical_date": None})
    finished = api.wait_for_runs(PIPELINE, 2, BACKFILL_TIMEOUT_S)
    (manual,) = [r for r in finished if r["dag_run_id"] == full["dag_run_id"]]
    assert manual["state"] == "success", manual
    out = _backfill("--from", days[0].isoformat(), "--to", days[2].isoformat())
    assert "backfill of jaffle_daily created" in out
    api.wait_for_backfills(PIPELINE, 1, BACKFILL_TIMEOUT_S)
    runs = api.call("GET", f"/dags/{PIPELINE}/dagRuns?limit=100&run_type=backfill")["dag_runs"]
    assert sorted(r["data_interval_start"][:10] for r in runs) == [d.isoformat() for d in days]
    assert {r["state"] for r in runs} == {"success"}, runs
    loads = day_loads(env.warehouse_url, days)  # one load per day, holding only that day
    assert len(set(loads.values())) == 3
    counts = {day: orders_on(env.shop_url, "orders", day) for day in days}
    assert {day: orders_on(env.warehouse_url, "raw_shop.orders", day) for day in days} == counts
    assert {day: orders_on(env.warehouse_url, "analytics.orders", day) for day in days} == counts
    before = published_fingerprints(env.warehouse_url)
    assert "orders" in before

    # the marts after the backfill are those of one full refresh of everything
    api.call("PATCH", f"/dags/{PIPELINE}", {"is_paused": True})
    refreshed = elt_command("run", PIPELINE, "--full-refresh", timeout=900)
    assert refreshed.returncode == 0, refreshed.stdout + refreshed.stderr
    assert published_fingerprints(env.warehouse_url) == before


def _load_ids(url: str, days: list) -> dict:
    """Per day: the set of dlt loads its raw orders came from."""
    found = {}
    for day in days:
        start = datetime(day.year, day.month, day.day)
        found[day] = {
            row[0]
            for row in query(
                url,
                "select distinct _dlt_load_id from raw_shop.orders"
                " where ordered_at >= %s and ordered_at < %s",
                (start, start + timedelta(days=1)),
            )
        }
    return found


@pytest.mark.timeout(1200)
def test_a_rerun_of_an_interval_loads_it_again_and_changes_nothing(airflow_up):
    env, api = airflow_up
    days = busy_days(env.shop_url)
    loads = _load_ids(env.warehouse_url, days)
    counts = {day: orders_on(env.shop_url, "orders", day) for day in days}
    before = published_fingerprints(env.warehouse_url)
    api.call("PATCH", f"/dags/{PIPELINE}", {"is_paused": False})

    _backfill("--from", days[1].isoformat(), "--to", days[1].isoformat(), "--rerun")
    api.wait_for_backfills(PIPELINE, 2, BACKFILL_TIMEOUT_S)

    runs = api.call("GET", f"/dags/{PIPELINE}/dagRuns?limit=100&run_type=backfill")["dag_runs"]
    assert {r["state"] for r in runs} == {"success"}, runs
    again = _load_ids(env.warehouse_url, days)
    assert again[days[0]] == loads[days[0]] and again[days[2]] == loads[days[2]]
    assert len(again[days[1]]) == 1 and again[days[1]] != loads[days[1]]  # loaded again …
    # … and nothing changed
    assert {day: orders_on(env.warehouse_url, "raw_shop.orders", day) for day in days} == counts
    assert published_fingerprints(env.warehouse_url) == before


def test_backfill_of_an_unknown_pipeline_names_the_known_ones(airflow_up):
    done = elt_command("airflow", "backfill", "nope", "--from", "2026-01-01", "--to", "2026-01-02")
    assert done.returncode == 1
    assert "unknown pipeline 'nope'; known: jaffle_daily" in done.stderr
