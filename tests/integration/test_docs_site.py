"""The data-docs portal in a real browser: a good run and a run with bad data, built, served
on 127.0.0.1 and opened by headless Chromium (Debian's, driven by Playwright)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pytest

from elt import config as elt_config
from elt import paths
from elt.docs_site.build import SiteResult, build_site
from elt.docs_site.serve import serve_in_thread, url_of
from elt.runner import run_pipeline
from tests.helpers.warehouse import rows

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SCREENSHOTS = paths.project_root() / ".elt" / "test-artifacts" / "screenshots"
TIMEOUT_MS = 20_000


@dataclass
class Portal:
    """Two runs (one good, one failed by bad data), the site built from them, and its URL."""

    url: str
    site: SiteResult
    good_run: str
    bad_run: str
    good_rows: dict[str, int]
    shop_rows: dict[str, int]
    warehouse: str


@pytest.fixture(scope="module")
def portal(pg, demo_sources):
    """A good and a bad run of jaffle_daily on small demo data, the site built and served."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)")
    url = pg.url()
    summary = demo_sources
    server = None
    try:
        config = elt_config.load(check_env=True)
        good = run_pipeline(config, "jaffle_daily")
        assert good.status == "succeeded", good.error
        shop_admin = pg.url("shop")
        rows(
            shop_admin,
            "update products set price = -100 where sku = (select min(sku) from products)",
        )
        try:
            bad = run_pipeline(config, "jaffle_daily")
        finally:
            rows(shop_admin, "update products set price = abs(price) where price < 0")
        assert bad.status == "failed"
        site = build_site(url)
        server, _ = serve_in_thread(site.root)
        yield Portal(
            url=url_of(server),
            site=site,
            good_run=good.run_id,
            bad_run=bad.run_id,
            good_rows=good.report().rows,
            shop_rows=summary.shop_rows,
            warehouse=url,
        )
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()


@pytest.fixture(scope="module")
def browser_context():
    """One headless Chromium for the module; every request any page makes is recorded."""
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        context.requests = []
        context.on("request", lambda request: context.requests.append(request.url))
        yield context
        context.close()
        browser.close()


@pytest.fixture
def page(browser_context):
    """A fresh tab."""
    tab = browser_context.new_page()
    yield tab
    tab.close()


def test_the_build_found_both_runs_and_both_docs(portal: Portal) -> None:
    assert portal.site.runs == 2
    assert portal.site.dbt_docs and portal.site.gx_docs
    assert portal.site.failed_checks >= 1
    assert (portal.site.root / "dbt" / "manifest.json").exists()
    assert (portal.site.root / "dbt" / "catalog.json").exists()


def test_the_run_table_shows_the_pipeline_with_its_row_counts(portal: Portal, page) -> None:
    page.goto(portal.url)
    assert page.title() == "ELT data docs"
    good = page.locator(f'#runs tr[data-run="{portal.good_run}"]')
    assert good.locator("td").nth(1).inner_text() == "jaffle_daily"
    assert good.locator("td").nth(2).inner_text() == "succeeded"
    assert good.locator("td.rows").inner_text() == f"{sum(portal.good_rows.values()):,}"
    bad = page.locator(f'#runs tr[data-run="{portal.bad_run}"]')
    assert bad.locator("td").nth(2).inner_text() == "failed"
    assert int(bad.locator("td.failed").inner_text()) >= 1
    latest = page.locator('.card.latest[data-pipeline="jaffle_daily"]')
    assert portal.bad_run in latest.inner_text()
    sources = page.locator("#freshness tr[data-source]").all_inner_texts()
    assert {text.split("\t")[0] for text in sources} >= {"landing", "shop", "social"}
    page.screenshot(path=SCREENSHOTS / "portal-home.png", full_page=True)

    page.click(f'#runs tr[data-run="{portal.good_run}"] a')
    orders = page.locator('table.tables tr[data-table="shop.orders"] td.num')
    assert orders.inner_text() == f"{portal.shop_rows['orders']:,}"
    customers = page.locator('table.tables tr[data-table="shop.customers"] td.num')
    assert customers.inner_text() == f"{portal.shop_rows['customers']:,}"
    page.screenshot(path=SCREENSHOTS / "portal-run.png", full_page=True)


def test_the_charts_are_drawn(portal: Portal, page) -> None:
    page.goto(portal.url)
    charts = page.locator('.charts[data-pipeline="jaffle_daily"] svg')
    assert charts.count() == 2
    for index in range(2):
        chart = charts.nth(index)
        assert chart.locator("rect.bar").count() == 2
        assert chart.locator("path.trend").count() == 1
        box = chart.locator("rect.bar").first.bounding_box()
        assert box is not None and box["height"] > 0
    assert charts.first.locator("rect.bar.failed").count() == 1  # the bad run, in red


def test_the_dbt_link_opens_the_lineage_page(portal: Portal, page) -> None:
    page.goto(portal.url)
    page.click("#dbt-lineage")
    page.wait_for_url("**/dbt/index.html#!/overview?g_v=1")
    page.wait_for_function("document.title.includes('dbt')")
    # dbt's page loaded our manifest: the project's models are in its navigation tree
    page.get_by_text("customers", exact=True).first.wait_for(state="attached")
    page.get_by_text("Lineage Graph").first.wait_for()
    page.wait_for_selector("canvas")  # the graph itself (cytoscape draws on canvases)
    page.screenshot(path=SCREENSHOTS / "dbt-lineage.png")


def test_the_gx_link_opens_the_suite_results(portal: Portal, page) -> None:
    page.goto(portal.url)
    page.click("#gx-docs")
    section = page.locator(f'h2[data-run="{portal.good_run}"] + ul a.gx-run')
    assert section.count() >= 3  # raw checks per source load, and the audit suites
    audit = section.filter(has_text="jaffle_daily.orders")
    audit.first.click()
    page.get_by_text("Expectation Validation Result").first.wait_for()
    text = page.inner_text("body")
    assert "jaffle_daily.orders" in text and portal.good_run in text
    assert "Succeeded" in text
    page.screenshot(path=SCREENSHOTS / "gx-suite-results.png", full_page=True)


def _expected_failure(portal: Portal) -> tuple[str, str]:
    """The name and observed value of the bad run's first failed check, from elt_meta."""
    gx = rows(
        portal.warehouse,
        "select expectation_name, observed_value from elt_meta.checks"
        " where run_id = %s and not success order by checked_at desc, check_id",
        (portal.bad_run,),
    )
    if gx:
        name, observed = gx[0]
        return name, f"{observed:,}" if isinstance(observed, int) else str(observed)
    dbt = rows(
        portal.warehouse,
        "select unique_id, failures from elt_meta.dbt_results where run_id = %s"
        " and resource_type = 'test' and status in ('fail', 'error') order by unique_id",
        (portal.bad_run,),
    )
    assert dbt, "the bad run recorded no failed check"
    unique_id, failures = dbt[0]
    return unique_id.split(".")[-2], f"{failures:,} failing row(s)"


def test_a_failed_check_is_listed_with_its_observed_value(portal: Portal, page) -> None:
    name, observed = _expected_failure(portal)
    page.goto(portal.url)
    row = page.locator("#failed-checks tr[data-check]").filter(has_text=name).first
    assert row.locator("td.observed").inner_text() == observed
    assert portal.bad_run in row.inner_text()
    row.locator("a").first.click()
    assert page.locator("h1").inner_text() == f"Failed check: {name}"
    assert page.locator("#observed").inner_text() == observed
    page.screenshot(path=SCREENSHOTS / "failed-check.png", full_page=True)
    if page.locator("#dbt-test").count():  # a dbt test: its SQL, and its page in the dbt docs
        assert "select" in page.locator("#sql").inner_text().lower()
        page.click("#dbt-test")
        page.wait_for_url("**/dbt/index.html#!/test/**")
        page.get_by_text(name).first.wait_for(state="attached")


def test_no_request_leaves_127_0_0_1(portal: Portal, browser_context) -> None:
    # runs last in the module: every page above has been opened by now
    requests = browser_context.requests
    assert len(requests) > 10
    local = urlparse(portal.url).netloc
    remote = [
        url
        for url in requests
        if urlparse(url).scheme not in ("data", "blob", "about") and urlparse(url).netloc != local
    ]
    assert remote == []
