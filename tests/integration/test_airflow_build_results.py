"""Node tasks read the producer's dbt results: one query per process and run, kept fresh.

A worker runs one node task per process and reads only its node's rows; where one process
runs many node tasks of a run (`elt airflow test`), the second question reads every node's
rows and later ones are answered from memory until this process writes results of the run.
"""

from __future__ import annotations

import pytest

from elt import runs
from orchestration.airflow import run_state
from tests.helpers.warehouse import rows

pytestmark = pytest.mark.integration


def _result(name: str, status: str = "success", kind: str = "model") -> runs.DbtResultRecord:
    return runs.DbtResultRecord(f"{kind}.shop.{name}", kind, status, 0.1)


@pytest.fixture
def recorded(pg):
    url = pg.create_database("build_results")
    runs.migrate(url)
    for run_id in ("run-a", "run-b"):
        runs.open_run(url, run_id, "shop", "airflow", reopen=False)
    runs.record_dbt_results(url, "run-a", [_result(f"m{i}") for i in range(5)])
    runs.record_dbt_results(url, "run-b", [_result("m0", "error")])
    run_state.forget_build_results("run-a")
    run_state.forget_build_results("run-b")
    return url


def _statuses(results: list[runs.DbtResultRecord]) -> dict[str, str]:
    return {r.unique_id.split(".")[-1]: r.status for r in results}


def test_results_come_from_the_run_and_stay_fresh_after_a_rerun(recorded):
    url = recorded
    first = run_state.build_results(url, "run-a", ["model.shop.m3", "model.shop.m1"])
    assert [r.unique_id for r in first] == ["model.shop.m1", "model.shop.m3"]
    assert _statuses(run_state.build_results(url, "run-a", ["model.shop.m4"])) == {"m4": "success"}
    # another run's rows are never mixed in; a node without a result is left out
    assert _statuses(run_state.build_results(url, "run-b", ["model.shop.m0"])) == {"m0": "error"}
    assert run_state.build_results(url, "run-a", ["model.shop.nope"]) == []
    assert run_state.build_results(url, "run-a", []) == []
    # a node re-run by this process replaces its row: the next reader sees the new status
    runs.record_dbt_results(url, "run-a", [_result("m2", "error")])
    run_state.forget_build_results("run-a")
    again = run_state.build_results(url, "run-a", ["model.shop.m2", "model.shop.m0"])
    assert _statuses(again) == {"m0": "success", "m2": "error"}
    # a result written by another process after this one read the run is found too
    rows(
        url,
        "insert into elt_meta.dbt_results (run_id, unique_id, resource_type, status)"
        " values ('run-a', 'test.shop.t9', 'test', 'fail')",
    )
    assert _statuses(run_state.build_results(url, "run-a", ["test.shop.t9"])) == {"t9": "fail"}
