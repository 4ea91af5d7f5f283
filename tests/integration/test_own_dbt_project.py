"""A team's own dbt project (tests/fixtures/acme_dbt) run by the platform.

The fixture is shaped unlike the demo's project: its own profile name and no profiles.yml,
no ``+schema`` (seeds, snapshot, helper tables and marts all land in the audit schema),
marts in a nested folder beside one that opts out, and one published by ``meta`` from a
folder not called marts. ``pipelines.yml`` names it with a relative ``dbt.project_dir``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from elt import config as elt_config
from elt.runner import run_pipeline
from tests.helpers.warehouse import rows

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
PROJECT = FIXTURES / "acme_dbt"
LANDING = FIXTURES / "acme_landing"
PIPELINE = "acme_daily"
# what the rule of elt/marts.py publishes from the selection "+marts +reporting"
PUBLISHED = {"customer_summary", "revenue_by_country"}
# built into the audit schema by the same run, never published
NOT_PUBLISHED = {"country_names", "customer_history", "order_facts", "fx_scratch"}


def acme_config(home: Path, project: Path = PROJECT) -> dict:
    """pipelines.yml for the fixture project, with ``project_dir`` relative to the file."""
    return {
        "version": 1,
        "dbt": {"project_dir": os.path.relpath(project, home)},
        "sources": {
            "acme": {
                "type": "filesystem",
                "bucket_url": "env:ACME_LANDING_URL",
                "files": {
                    "orders": {"glob": "orders/*.csv", "format": "csv", "primary_key": "id"},
                    "customers": {"glob": "customers/*.csv", "format": "csv", "primary_key": "id"},
                },
            }
        },
        "pipelines": {
            PIPELINE: {
                "sources": ["acme"],
                "dbt": {"select": ["+marts", "+reporting"]},
                "quality": {
                    "rules": [
                        {"type": "row_count", "table": "revenue_by_country", "min": 3},
                        {
                            "type": "range",
                            "table": "revenue_by_country",
                            "column": "revenue",
                            "min": 0,
                        },
                    ]
                },
            }
        },
    }


@pytest.fixture(scope="module")
def acme_env(pg, tmp_path_factory):
    """ELT_HOME, an empty warehouse database and pipelines.yml for the fixture project."""
    home = tmp_path_factory.mktemp("acme")
    config_file = home / "pipelines.yml"
    config_file.write_text(yaml.safe_dump(acme_config(home), sort_keys=False))
    saved = dict(os.environ)
    os.environ.update(
        {
            "ELT_HOME": str(home),
            "ELT_WAREHOUSE_URL": pg.create_database("acme_wh"),
            "ELT_CONFIG": str(config_file),
            "ACME_LANDING_URL": str(LANDING),
            "ELT_GX_DIR": str(home / "gx_project"),  # GX writes suites: not into the repo
        }
    )
    try:
        yield home
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="module")
def acme_run(acme_env):
    """One `elt run` of the fixture pipeline."""
    config = elt_config.load(check_env=True)
    return config, run_pipeline(config, PIPELINE)


def _tables(url: str, schema: str) -> set[str]:
    found = rows(url, "select tablename from pg_tables where schemaname = %s", (schema,))
    return {name for (name,) in found}


def test_run_publishes_exactly_the_selected_marts(acme_run):
    _, result = acme_run
    assert result.status == "succeeded", result.error
    url = os.environ["ELT_WAREHOUSE_URL"]
    assert set(result.published) == PUBLISHED
    assert _tables(url, "analytics") == PUBLISHED
    # everything else the run built is in the audit schema, and stayed there
    assert _tables(url, "audit") >= NOT_PUBLISHED
    revenue = dict(rows(url, "select country_code, revenue from analytics.revenue_by_country"))
    assert {code: float(amount) for code, amount in revenue.items()} == {
        "DE": 14.75,
        "NL": 99.0,
        "FR": 20.75,
    }
    summary = rows(url, "select customer_name, orders from analytics.customer_summary order by 1")
    assert summary == [("Anna", 2), ("Bram", 1), ("Chloé", 2)]


def test_the_generated_profile_carries_the_projects_own_profile_name(acme_run, acme_env):
    profile = acme_env / "dbt" / "profiles" / "acme_warehouse" / "profiles.yml"
    document = yaml.safe_load(profile.read_text())
    assert list(document) == ["acme_warehouse"]
    assert not (PROJECT / "profiles.yml").exists()
    assert not (PROJECT / "target").exists()  # artifacts stay in the state folder
    # every connection value comes from the environment: no secret in the file
    output = document["acme_warehouse"]["outputs"]["elt"]
    assert all("env_var(" in str(output[key]) for key in ("host", "user", "password", "dbname"))
    assert os.environ["ELT_WAREHOUSE_URL"].split("@")[0].split(":")[-1] not in profile.read_text()


def test_marts_from_the_builds_manifest_are_the_selections_marts(acme_run):
    """`elt build` publishes what the manifest its build wrote says (no `dbt ls`): the same
    marts as the selection resolved by dbt, on a project with nested, opted-out and
    meta-published models."""
    from elt import project as dbt_project
    from elt.marts import built_marts, selected_marts

    config, result = acme_run
    project = dbt_project.of(config, config.pipeline(PIPELINE))
    built = [r.unique_id for r in result.dbt.results]
    from_manifest = built_marts(project, built, target_path=project.target_dir())
    assert {mart.name for mart in from_manifest} == PUBLISHED
    assert from_manifest == selected_marts(project, ["+marts", "+reporting"])
    # a node the build did not report is not published, even when the manifest has it
    fewer = [uid for uid in built if not uid.endswith(".customer_summary")]
    names = {m.name for m in built_marts(project, fewer, target_path=project.target_dir())}
    assert names == PUBLISHED - {"customer_summary"}


def test_a_selected_mart_not_built_closes_the_gate_by_name(acme_run):
    from elt.spec import plan
    from elt.steps import RunResult, StepError, StepRunner

    config, result = acme_run
    pipe = config.pipeline(PIPELINE)
    url = os.environ["ELT_WAREHOUSE_URL"]
    rows(
        url,
        "delete from elt_meta.dbt_results where run_id = %s and unique_id like %s",
        (result.run_id, "%.customer_summary"),
    )
    runner = StepRunner(config, pipe, RunResult(run_id=result.run_id, pipeline=PIPELINE), url)
    with pytest.raises(StepError, match=r"selected mart\(s\) customer_summary were not built"):
        runner.run(plan(config, pipe).step("quality_gate"))


def test_publish_keeps_other_pipelines_marts_and_an_empty_selection_changes_nothing(acme_run):
    from elt.marts import Mart
    from elt.publish import publish

    url = os.environ["ELT_WAREHOUSE_URL"]
    rows(url, "create table analytics.other_mart as select 1 as id")
    mart = Mart("model.acme_analytics.revenue_by_country", "revenue_by_country", "audit")
    assert publish(url, marts=[mart]).tables == {"revenue_by_country": 3}
    assert _tables(url, "analytics") == {*PUBLISHED, "other_mart"}
    before = rows(url, "select oid from pg_namespace where nspname = 'analytics'")
    assert publish(url, marts=[]).tables == {}
    assert rows(url, "select oid from pg_namespace where nspname = 'analytics'") == before
    rows(url, "drop table analytics.other_mart")


# -- the same project through the orchestrators -------------------------------------------


def _fresh_published_schema(url: str) -> None:
    rows(url, "drop schema if exists analytics cascade")


def test_airflow_dag_run_publishes_exactly_the_selected_marts(acme_run):
    from elt import project as dbt_project
    from orchestration.airflow import manifest
    from tests.helpers.orchestrators import airflow

    config, _ = acme_run
    url = os.environ["ELT_WAREHOUSE_URL"]
    _fresh_published_schema(url)
    manifest.parse_manifest(dbt_project.of(config, config.pipeline(PIPELINE)))
    airflow("migrate")
    outcome = airflow("run", PIPELINE)
    assert "success" in outcome["state"], outcome
    assert _tables(url, "analytics") == PUBLISHED
    # Airflow's per-mart assets follow the same rule
    dagbag = airflow("inspect")
    assert dagbag["import_errors"] == {}
    outlets = dagbag["dags"][PIPELINE]["tasks"]["publish"].get("outlets", [])
    marts = {name.split(".")[-1] for name in outlets if name.startswith("elt.analytics.")}
    assert marts == PUBLISHED


def test_dag_parsing_refuses_another_projects_manifest(acme_run):
    import json

    from elt import project as dbt_project
    from orchestration.airflow import manifest
    from tests.helpers.orchestrators import airflow

    config, _ = acme_run
    project = dbt_project.of(config, config.pipeline(PIPELINE))
    manifest.parse_manifest(project)
    stamp = manifest.target_dir(project) / "elt_stamp.json"
    original = stamp.read_text()
    # what a shared ELT_HOME once did: the other project's manifest under this one's name
    stamp.write_text(
        json.dumps({**json.loads(original), "project_name": "elt", "project_dir": "/x"})
    )
    try:
        errors = airflow("inspect")["import_errors"]
    finally:
        stamp.write_text(original)
    assert len(errors) == 1
    message = next(iter(errors.values()))
    assert "was built from another dbt project ('elt' at /x), not 'acme_analytics'" in message
    assert "run `elt airflow parse-manifest`" in message


def test_prefect_flow_run_publishes_exactly_the_selected_marts(acme_run, prefect_server, acme_env):
    from orchestration.prefect.factory import build_flow
    from tests.helpers.prefect_api import prefect_client_of, prefect_env_vars

    config, _ = acme_run
    url = os.environ["ELT_WAREHOUSE_URL"]
    _fresh_published_schema(url)
    os.environ.update(prefect_env_vars(acme_env))
    with prefect_client_of(prefect_server):
        state = build_flow(config, PIPELINE)(return_state=True)
    assert state.is_completed(), state.message
    assert set(state.result()["published"]) == PUBLISHED
    assert _tables(url, "analytics") == PUBLISHED


# -- development and CI ---------------------------------------------------------------------


def _checkout(tmp_path: Path, home: Path) -> Path:
    """A developer's checkout of the project (another folder, the same dbt project) and a
    pipelines.yml naming it; ELT_CONFIG points at it."""
    checkout = tmp_path / "checkout"
    shutil.copytree(PROJECT, checkout / "acme_dbt")
    document = acme_config(checkout, checkout / "acme_dbt")
    config_file = checkout / "pipelines.yml"
    config_file.write_text(yaml.safe_dump(document, sort_keys=False))
    os.environ["ELT_CONFIG"] = str(config_file)
    return checkout / "acme_dbt"


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, path
    path.write_text(text.replace(old, new))


def _relations(url: str, schema_like: str) -> dict[str, set[str]]:
    found = rows(
        url,
        "select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname like %s and c.relkind in ('r', 'v')",
        (schema_like,),
    )
    result: dict[str, set[str]] = {}
    for schema, name in found:
        result.setdefault(schema, set()).add(name)
    return result


def _storage(url: str) -> list[tuple]:
    """Every audit/published relation with its storage id: a rebuild changes it."""
    return rows(
        url,
        "select n.nspname, c.relname, c.relfilenode from pg_class c join pg_namespace n"
        " on n.oid = c.relnamespace where n.nspname in ('audit', 'analytics')"
        " and c.relkind in ('r', 'v') order by 1, 2",
    )


def _elt(*args: str):
    from typer.testing import CliRunner

    from elt.cli import app

    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def test_dev_modified_builds_only_the_change_and_its_children(acme_run, tmp_path):
    url = os.environ["ELT_WAREHOUSE_URL"]
    os.environ["ELT_DEV_USER"] = "Anna.B"
    project = _checkout(tmp_path, Path(os.environ["ELT_HOME"]))
    _edit(
        project / "models/reporting/customer_summary.sql",
        "coalesce(sum(facts.amount), 0) as lifetime_amount",
        "coalesce(sum(facts.amount), 0) as lifetime_amount,\n    max(facts.ordered_on) as last_on",
    )
    _edit(project / "models/reporting/top_countries.sql", "orders > 1", "orders >= 1")
    before = _storage(url)

    built = _elt("dev", "--modified")
    assert built.exit_code == 0, built.output
    assert _relations(url, "dev\\_anna\\_b%") == {
        "dev_anna_b": {"customer_summary", "customer_tiers", "top_countries"}
    }
    assert "customer_summary, customer_tiers, top_countries" in built.output
    # the unchanged parent is read from production: the published mart
    view = rows(
        url,
        "select definition from pg_views where schemaname = 'dev_anna_b'"
        " and viewname = 'top_countries'",
    )[0][0]
    assert "analytics.revenue_by_country" in view
    assert rows(url, "select count(*) from dev_anna_b.top_countries") == [(3,)]
    assert rows(url, "select count(last_on) from dev_anna_b.customer_summary") == [(3,)]
    assert _storage(url) == before  # audit and published untouched

    cleaned = _elt("dev", "clean")
    assert cleaned.exit_code == 0, cleaned.output
    assert _relations(url, "dev\\_%") == {}
    assert rows(url, "select count(*) from pg_namespace where nspname like 'dev\\_%'") == [(0,)]


def test_dev_refuses_the_pipelines_schemas(acme_run):
    os.environ["ELT_DEV_SCHEMA"] = "audit_mine"
    result = _elt("dev")
    assert result.exit_code == 1
    assert "schema 'audit_mine' belongs to the pipelines" in result.output


def test_ci_on_a_breaking_change_fails_names_the_test_and_drops_its_schema(acme_run, tmp_path):
    url = os.environ["ELT_WAREHOUSE_URL"]
    project = _checkout(tmp_path, Path(os.environ["ELT_HOME"]))
    _edit(
        project / "models/marts/finance/revenue_by_country.sql",
        "sum(facts.amount) as revenue",
        "-sum(facts.amount) as revenue",
    )
    before = _storage(url)
    result = _elt("ci", "--name", "feature/Negative-Revenue")
    assert result.exit_code == 1, result.output
    assert "revenue_is_not_negative" in result.output
    assert "changed or downstream: revenue_by_country, top_countries" in result.output
    assert "rows revenue_by_country: 3 published → 3 here" in result.output
    assert "schema ci_feature_negative_revenue dropped" in result.output
    # the pipeline's quality rule on the changed mart ran on the CI build, and left no trace
    assert "quality rule ci_acme_daily.revenue_by_country" in result.output
    assert rows(url, "select count(*) from elt_meta.checks where run_id like 'ci-%%'") == [(0,)]
    assert rows(url, "select count(*) from pg_namespace where nspname like 'ci\\_%'") == [(0,)]
    assert _storage(url) == before


def test_a_full_refresh_rebuilds_a_project_whose_views_sit_in_the_audit_schema(acme_run):
    config, _ = acme_run
    url = os.environ["ELT_WAREHOUSE_URL"]
    result = run_pipeline(config, PIPELINE, full_refresh=True)
    assert result.status == "succeeded", result.error
    assert set(result.published) == PUBLISHED
    assert rows(url, "select count(*) from analytics.customer_summary") == [(3,)]
