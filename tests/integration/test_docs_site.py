"""The data-docs portal in a real browser: a good run and a run with bad data, built, served
on 127.0.0.1 and opened by headless Chromium (Debian's, driven by Playwright)."""

from __future__ import annotations

from dataclasses import dataclass, field
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
    """Four runs — good, failed by bad data, fixed, published with a warning — the site
    built from them, and its URL."""

    url: str
    site: SiteResult
    good_run: str
    bad_run: str
    fixed_run: str
    warn_run: str
    good_rows: dict[str, int]
    shop_rows: dict[str, int]
    warehouse: str = field(repr=False)  # holds the password: kept out of failure reports


def _customers_without_orders(shop_admin: str, count: int) -> None:
    """Customers who never ordered: the mart's first_ordered_at is null for them, which the
    warn rule most_customers_have_ordered (at most 10 % null) reports."""
    rows(
        shop_admin,
        "insert into customers (id, name) select 'ghost-' || g, 'Ghost ' || g"
        " from generate_series(1, %s) g",
        (count,),
    )


@pytest.fixture(scope="module")
def portal(pg, demo_sources):
    """Good, failed, fixed and warning runs of jaffle_daily on small demo data, built and served."""
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
            "update products set price = -price where sku = (select min(sku) from products)",
        )
        try:
            bad = run_pipeline(config, "jaffle_daily")
        finally:
            rows(shop_admin, "update products set price = -price where price < 0")
        assert bad.status == "failed"
        fixed = run_pipeline(config, "jaffle_daily")
        assert fixed.status == "succeeded", fixed.error
        _customers_without_orders(shop_admin, max(10, summary.shop_rows["customers"] // 4))
        warned = run_pipeline(config, "jaffle_daily")
        assert warned.status == "succeeded", warned.error
        assert warned.check_warnings, "the warning run raised no warning"
        site = build_site(url)
        server, _ = serve_in_thread(site.root)
        yield Portal(
            url=url_of(server),
            site=site,
            good_run=good.run_id,
            bad_run=bad.run_id,
            fixed_run=fixed.run_id,
            warn_run=warned.run_id,
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


def test_the_build_found_the_runs_marts_and_both_docs(portal: Portal) -> None:
    assert portal.site.runs == 4
    assert portal.site.marts >= 5
    assert portal.site.dbt_docs and portal.site.gx_docs
    assert (portal.site.root / "assets" / "plotly.min.js").stat().st_size > 1_000_000


def test_the_run_table_shows_statuses_and_row_counts(portal: Portal, page) -> None:
    page.goto(portal.url)
    assert page.title() == "ELT data docs"
    good = page.locator(f'#runs tr[data-run="{portal.good_run}"]')
    assert good.locator("td").nth(2).inner_text() == "succeeded"
    assert good.locator("td.rows").inner_text() == f"{sum(portal.good_rows.values()):,}"
    bad = page.locator(f'#runs tr[data-run="{portal.bad_run}"]')
    assert bad.locator("td").nth(2).inner_text() == "failed"
    warned = page.locator(f'#runs tr[data-run="{portal.warn_run}"] td').nth(2)
    assert warned.inner_text() == "succeeded with warnings"
    assert warned.locator("span").get_attribute("class") == "status-warnings"
    page.screenshot(path=SCREENSHOTS / "portal-home.png", full_page=True)


def test_dbt_keeps_failing_rows_where_readers_cannot_see_them(portal: Portal) -> None:
    views = rows(
        portal.warehouse,
        "select count(*) from information_schema.views where table_schema = 'audit_failures'",
    )
    assert views[0][0] > 10  # one per dbt test (store_failures_as: view)
    reader = rows(
        portal.warehouse, "select has_schema_privilege('elt_reader', 'audit_failures', 'usage')"
    )
    assert reader == [(False,)]


def _moved_clock(page, hours: float) -> None:
    """The browser's clock set ``hours`` after now (the page computes ages from it)."""
    from datetime import UTC, datetime, timedelta

    page.clock.install(time=datetime.now(UTC) + timedelta(hours=hours))


def test_the_customers_mart_page_answers_can_i_trust_it(portal: Portal, page) -> None:
    page.goto(portal.url)
    page.click('#mart-list tr[data-asset="customers"] a')
    assert page.locator("h1").inner_text() == "Published mart: customers"
    assert page.locator(".fact-owner").inner_text() == "data-team"
    assert portal.warn_run in page.locator(".fact-last").inner_text()
    assert page.locator(".fact-freshness [data-state]").get_attribute("data-state") == "fresh"
    # the open warning: expected vs observed, and sample values
    warning = page.locator('#asset-checks tr[data-status="open"]')
    assert warning.count() == 1
    assert "most_customers_have_ordered" in warning.inner_text()
    assert warning.locator("td.expected").inner_text() == "≤ 10 % null"
    assert "% of rows" in warning.locator("td.observed").inner_text()
    assert "sev-warn" in warning.locator("td").nth(2).get_attribute("class")
    # on a desktop screen the whole row is in view: long check names wrap, not the verdict
    row, main = warning.bounding_box(), page.locator("main").bounding_box()
    assert row and main and row["x"] + row["width"] <= main["x"] + main["width"]
    sample = page.locator(".open-sample table.failing-rows")  # keys of the failing rows
    assert sample.locator("th").first.inner_text() == "customer_id"
    keys = sample.locator("tr td:first-child").all_inner_texts()
    assert keys and all(key.startswith("ghost-") for key in keys)
    page.wait_for_selector("#volume .main-svg")  # plotly drew the chart
    page.screenshot(path=SCREENSHOTS / "portal-mart.png", full_page=True)
    warning.locator("a").first.click()
    assert page.locator("#status").inner_text() == "open"
    assert portal.warn_run in page.locator("#check-facts").inner_text()


def test_a_mart_turns_stale_when_the_clock_moves(portal: Portal, page) -> None:
    _moved_clock(page, 13)  # customers: warn after 12 h, error after 1 d
    page.goto(portal.url + "assets/customers.html")
    badge = page.locator(".fact-freshness [data-state]")
    assert badge.get_attribute("data-state") == "warn"
    assert badge.inner_text().startswith("stale (warn)")
    page.clock.set_fixed_time(page.evaluate("Date.now()") + 12 * 3600 * 1000)
    page.reload()
    assert badge.get_attribute("data-state") == "error"


def test_a_raw_table_turns_stale_by_its_sources_thresholds(portal: Portal, page) -> None:
    _moved_clock(page, 25)  # shop: warn after 1 d, error after 2 d (pipelines.yml)
    page.goto(portal.url + "assets/raw_shop.orders.html")
    badge = page.locator(".fact-freshness [data-state]")
    assert badge.get_attribute("data-state") == "warn"
    page.clock.set_fixed_time(page.evaluate("Date.now()") + 24 * 3600 * 1000)
    page.reload()
    assert badge.get_attribute("data-state") == "error"


def test_the_fixed_failure_is_marked_resolved(portal: Portal, page) -> None:
    page.goto(portal.url + "checks.html")
    resolved = page.locator('#all-checks tr[data-status="resolved"]')
    assert resolved.count() >= 1
    text = resolved.first.inner_text()
    assert portal.bad_run in text and portal.fixed_run in text
    resolved.first.locator("a").first.click()
    assert page.locator("#status").inner_text() == "resolved"
    history = page.locator("#check-history")
    assert history.locator(f'tr[data-run="{portal.bad_run}"]').inner_text().count("fail") >= 1


def test_the_failed_run_page_says_nothing_was_published(portal: Portal, page) -> None:
    page.goto(portal.url)
    page.click(f'#runs tr[data-run="{portal.bad_run}"] a')
    assert page.locator("#nothing-published").is_visible()
    error = page.locator("#error")
    assert "quality gate closed" in error.inner_text()
    box = error.bounding_box()
    assert box is not None and box["height"] > 0
    assert error.evaluate("e => e.scrollHeight <= e.clientHeight + 1")  # not cut off
    grid = page.locator("table.grid")
    assert grid.locator('tr[data-step="publish"] td.cell-succeeded').count() == 3
    page.screenshot(path=SCREENSHOTS / "portal-run.png", full_page=True)


def test_the_lineage_page_draws_source_raw_mart_and_export(portal: Portal, page) -> None:
    page.goto(portal.url + "lineage.html")
    page.wait_for_selector("#lineage-graph .main-svg")
    edges = page.locator("#edges tr[data-from]").all()
    pairs = {(e.get_attribute("data-from"), e.get_attribute("data-to")) for e in edges}
    assert ("shop (sql_database)/orders", "raw_shop.orders") in pairs  # the dlt source
    assert any(f == "customers" and t.endswith("/customers") for f, t in pairs)  # the export
    assert any(t == "customers" for f, t in pairs)  # published from the audit schema


def test_the_dbt_link_opens_the_lineage_page(portal: Portal, page) -> None:
    page.goto(portal.url)
    page.click("#nav-dbt")
    page.wait_for_url("**/dbt/index.html#!/overview?g_v=1")
    page.wait_for_function("document.title.includes('dbt')")
    page.get_by_text("customers", exact=True).first.wait_for(state="attached")
    page.wait_for_selector("canvas")
    assert page.locator("#portal-bar a").first.get_attribute("href") == "../index.html"


def _dbt_detail(page, label: str) -> str:
    """The value of one row of the details box of a dbt docs page."""
    row = page.locator("dl.detail", has=page.locator("dt.detail-label", has_text=label))
    return row.first.locator("dd.detail-value").inner_text()


def test_dbt_docs_name_the_published_relation_of_a_mart(portal: Portal, page) -> None:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(portal.url + "dbt/index.html#!/model/model.elt.customers")
    page.locator("dt.detail-label", has_text="Relation").first.wait_for()
    database = urlparse(portal.warehouse).path.lstrip("/")
    assert _dbt_detail(page, "Relation") == f"{database}.analytics.customers"
    assert _dbt_detail(page, "elt_built_in") == "audit.customers"  # where dbt built it
    page.goto(portal.url + "dbt/index.html#!/model/model.elt.stg_shop__customers")
    page.locator("dt.detail-label", has_text="Relation").first.wait_for()
    assert _dbt_detail(page, "Relation") == f"{database}.audit_staging.stg_shop__customers"
    assert errors == []  # the routes the crawler cannot reach (one document, many routes)


def test_gx_pages_keep_their_styling_offline(portal: Portal, page) -> None:
    page.goto(portal.url + "gx-results.html")
    section = page.locator(f'h2[data-run="{portal.good_run}"] + ul a.gx-run')
    section.filter(has_text="jaffle_daily.orders").first.click()
    page.get_by_text("Expectation Validation Result").first.wait_for()
    assert page.evaluate("typeof window.jQuery") == "function"
    # bootstrap's stylesheet is applied: its container class sets a max width
    assert page.evaluate("getComputedStyle(document.body).fontFamily") != ""
    assert "newsletter" not in page.inner_text("body")
    page.click("#portal-bar a")
    page.wait_for_url(portal.url + "index.html")
    assert page.title() == "ELT data docs"


def _crawl(context, start: str) -> tuple[list[str], list[str], list[str]]:
    """Every same-origin page reachable from ``start`` (bounded), with console errors and
    failed requests per page."""
    origin = urlparse(start).netloc
    seen, queue, errors, failed = set(), [start], [], []
    tab = context.new_page()
    tab.on(
        "console", lambda m: errors.append(f"{tab.url}: {m.text}") if m.type == "error" else None
    )
    tab.on("pageerror", lambda e: errors.append(f"{tab.url}: {e}"))
    tab.on("requestfailed", lambda r: failed.append(r.url))
    tab.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
    while queue and len(seen) < 400:
        url = queue.pop().split("#")[0]
        if url in seen:
            continue
        seen.add(url)
        tab.goto(url)
        tab.wait_for_load_state("load")
        if not url.endswith(".html") and not url.endswith("/"):
            continue
        for href in tab.eval_on_selector_all("a[href]", "els => els.map(e => e.href)"):
            link = href.split("#")[0]
            if urlparse(link).netloc == origin and link not in seen:
                queue.append(link)
    tab.close()
    return sorted(seen), errors, failed


def test_every_page_loads_without_console_errors_or_failed_requests(
    portal: Portal, browser_context
) -> None:
    pages, errors, failed = _crawl(browser_context, portal.url)
    assert len(pages) > 20
    assert any("/dbt/" in p for p in pages) and any("/gx/" in p for p in pages)
    assert errors == []
    assert failed == []


DBT_ROUTES = ("model/model.elt.customers", "source/source.elt.shop.orders", "overview")
"""dbt's pages are routes of one document, which the crawler sees once."""


def test_every_page_fits_390_px(portal: Portal, browser_context) -> None:
    pages, _, _ = _crawl(browser_context, portal.url)
    pages += [f"{portal.url}dbt/index.html#!/{route}" for route in DBT_ROUTES]
    tab = browser_context.new_page()
    tab.set_viewport_size({"width": 390, "height": 844})
    too_wide = []
    for url in pages:
        tab.goto(url)
        if "/dbt/" in url:  # angular draws the route after the load
            tab.wait_for_function(
                "document.querySelector('.app-content > .app-body.ng-scope')?.innerText.trim()"
            )
        # dbt's app is a fixed box: a too-wide body is clipped, not scrolled, so measure both
        width = tab.evaluate(
            "Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        )
        if width > 390:
            too_wide.append(f"{url}: {width}px")
    tab.close()
    assert too_wide == []


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
