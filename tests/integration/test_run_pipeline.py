"""The walking skeleton: `elt run jaffle_daily` on the demo sources, end to end."""

from __future__ import annotations

import subprocess
import sys

import pytest

from elt import config as elt_config
from elt import settings
from elt.runner import run_pipeline
from tests.helpers.warehouse import rows

pytestmark = pytest.mark.integration

# business content of a mart: every column but the load id, which a lookback reload renews
ORDERS_FINGERPRINT = (
    "select md5(string_agg((to_jsonb(o) - 'load_id')::text, ',' order by order_id))"
    " from analytics.orders o"
)
PRODUCTS_FINGERPRINT = (
    "select md5(string_agg((to_jsonb(p) - 'load_id')::text, ',' order by product_id))"
    " from analytics.products p"
)


def test_run_ingests_builds_tests_and_publishes(pg, demo_sources):
    config = elt_config.load(check_env=True)
    result = run_pipeline(config, "jaffle_daily")
    assert result.status == "succeeded", result.error
    assert [s.step_id for s in result.steps] == [
        "ingest_shop",
        "ingest_social",
        "ingest_landing",
        "dbt_build",
        "quality_gate",
        "publish",
        "export",
        "notify",
    ]
    report = result.report()
    shop = demo_sources.shop_rows
    assert report.rows["shop.orders"] == shop["orders"]
    assert report.rows["shop.customers"] == shop["customers"]
    assert report.rows["social.tweets"] == demo_sources.rows["tweets"]
    assert report.models_built > 10 and report.tests_passed > 50

    url = pg.url()
    published = dict(
        rows(
            url,
            "select 'orders', count(*) from analytics.orders union all "
            "select 'customers', count(*) from analytics.customers",
        )
    )
    assert published["orders"] == shop["orders"]
    assert published["customers"] == shop["customers"]
    # every order total published equals the source's cents / 100
    source_total = rows(settings.warehouse_url("shop"), "select sum(order_total) from orders")
    published_total = rows(url, "select sum(order_total) * 100 from analytics.orders")
    assert int(published_total[0][0]) == int(source_total[0][0])

    run = rows(url, f"select status, pipeline from elt_meta.runs where run_id = '{result.run_id}'")
    assert run == [("succeeded", "jaffle_daily")]
    steps = rows(
        url,
        "select count(*), min(duration_s), min(peak_rss_mb) from elt_meta.steps"
        f" where run_id = '{result.run_id}'",
    )
    assert steps[0][0] == len(result.steps) and steps[0][1] >= 0 and steps[0][2] > 0
    loads = dict(
        rows(url, f"select table_name, rows from elt_meta.loads where run_id = '{result.run_id}'")
    )
    assert loads["orders"] == shop["orders"]
    failed = rows(
        url,
        "select count(*) from elt_meta.dbt_results"
        f" where run_id = '{result.run_id}' and status not in ('pass', 'success')",
    )
    assert failed == [(0,)]
    checks = rows(
        url,
        "select stage, bool_and(success), count(*) from elt_meta.checks"
        f" where run_id = '{result.run_id}' group by stage order by stage",
    )
    assert [(stage, ok) for stage, ok, _ in checks] == [("audit", True), ("raw", True)]
    exported = result.steps[-2]
    assert exported.step_id == "export" and exported.detail["rows"]["orders"] == shop["orders"]


def test_the_run_worked_under_the_least_privilege_roles(pg, demo_sources):
    """dlt loaded as elt_loader, dbt and publish worked as elt_transformer (elt/roles.py):
    each owns what it made, and the transformer is refused a write into raw."""
    owners = rows(
        pg.url(),
        "select distinct case when n.nspname like 'raw\\_%' then 'raw' else 'marts' end,"
        " c.relowner::regrole::text from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where c.relkind in ('r', 'v') and (n.nspname like 'raw\\_%'"
        " or n.nspname in ('audit', 'audit_staging', 'analytics')) order by 1",
    )
    assert owners == [("marts", "elt_transformer"), ("raw", "elt_loader")]
    with pytest.raises(Exception, match="permission denied for schema raw_shop"):
        rows(pg.url(), "set role elt_transformer; create table raw_shop.sneaky (id int)")


def test_rerun_with_no_new_data_keeps_the_same_marts(pg, demo_sources):
    config = elt_config.load(check_env=True)
    url = pg.url()
    before = rows(url, ORDERS_FINGERPRINT)
    result = run_pipeline(config, "jaffle_daily")
    assert result.status == "succeeded", result.error
    after = rows(url, ORDERS_FINGERPRINT)
    assert before == after
    dupes = rows(url, "select count(*) - count(distinct id) from raw_shop.orders")
    assert dupes == [(0,)]


def test_bad_source_data_fails_the_gate_and_keeps_published_marts(pg, demo_sources):
    config = elt_config.load(check_env=True)
    url = pg.url()
    before = rows(url, PRODUCTS_FINGERPRINT)
    shop_admin = pg.url("shop")
    rows(
        shop_admin,
        "update products set price = -100"
        " where sku = (select min(sku) from products) returning sku",
    )
    try:
        result = run_pipeline(config, "jaffle_daily")
    finally:
        rows(shop_admin, "update products set price = abs(price) where price < 0 returning sku")
    assert result.status == "failed"
    failed_steps = [s.step_id for s in result.steps if s.status == "failed"]
    assert failed_steps == ["quality_gate"]
    assert "publish" not in [s.step_id for s in result.steps]
    assert "nothing was published" in result.error
    after = rows(url, PRODUCTS_FINGERPRINT)
    assert before == after


def test_full_refresh_after_a_build_reloads_everything(pg, demo_sources):
    # dlt's full refresh drops the raw tables that dbt's staging views read from
    config = elt_config.load(check_env=True)
    result = run_pipeline(config, "jaffle_daily", full_refresh=True)
    assert result.status == "succeeded", result.error
    assert result.report().rows["shop.orders"] == demo_sources.shop_rows["orders"]
    published = rows(pg.url(), "select count(*) from analytics.orders")
    assert published == [(demo_sources.shop_rows["orders"],)]


def test_cli_run_reports_an_unknown_pipeline_clearly(demo_sources):
    result = subprocess.run(
        [sys.executable, "-m", "elt.cli", "run", "jaffle_dialy"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "unknown pipeline 'jaffle_dialy'; known: jaffle_daily" in result.stderr
