"""The portal's HTML and SVG rendering, and the offline rewrite of GX pages (no services)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

from elt.docs_site import assets, pages, svg
from elt.docs_site.history import FailedCheck, History, RunSummary, SourceFreshness

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SVG_NS = "{http://www.w3.org/2000/svg}"


def _run(run_id: str, minutes_ago: int, status: str = "succeeded", **kw) -> RunSummary:
    return RunSummary(
        run_id=run_id,
        pipeline=kw.pop("pipeline", "jaffle_daily"),
        orchestrator="elt",
        status=status,
        started_at=NOW - timedelta(minutes=minutes_ago),
        duration_s=kw.pop("duration_s", 30.0),
        error=kw.pop("error", None),
        **kw,
    )


def _history() -> History:
    good = _run("r1", 20, rows_loaded=1951, checks_passed=129, tables={"shop.orders": 634})
    bad = _run(
        "r2", 5, "failed", duration_s=14.5, rows_loaded=1424, checks_failed=1, error="gate <closed>"
    )
    check = FailedCheck(
        key="gx-7",
        run_id="r2",
        kind="gx",
        name="order_total_min_0",
        table="orders",
        column="order_total",
        severity="fail",
        observed="-100",
        details={"unexpected_percent": 0.5},
        suite="jaffle_daily.orders",
        stage="audit",
    )
    fresh = SourceFreshness("shop", NOW - timedelta(hours=3), "raw_shop", NOW)
    return History(runs=[bad, good], failed_checks=[check], freshness=[fresh])


def test_bar_chart_is_valid_svg_with_one_bar_per_point() -> None:
    chart = svg.bar_chart(
        [svg.Point("a", 10), svg.Point("b", 30, ok=False), svg.Point("c", 20)], title="t < 1"
    )
    root = ET.fromstring(chart)  # noqa: S314 - our own output
    bars = root.findall(f"{SVG_NS}rect")
    assert [b.get("class") for b in bars] == ["bar", "bar failed", "bar"]
    heights = [float(b.get("height")) for b in bars]
    assert heights[1] > heights[2] > heights[0] > 0
    assert root.find(f"{SVG_NS}path").get("d").startswith("M")
    assert root.find(f"{SVG_NS}title").text == "t < 1"


def test_bar_chart_without_points_says_so() -> None:
    root = ET.fromstring(svg.bar_chart([], title="empty"))  # noqa: S314
    assert root.findall(f"{SVG_NS}rect") == []
    assert "no runs yet" in "".join(root.itertext())


def test_axis_tops_are_round_and_labels_compact() -> None:
    assert [svg._nice_max(v) for v in (0, 0.3, 7, 31.6, 1951, 100)] == [1, 0.5, 10, 50, 2000, 100]
    assert [svg.format_number(v) for v in (0, 12.5, 1951, 2_500_000)] == [
        "0",
        "12.5",
        "1.95k",
        "2.5M",
    ]


def test_home_page_lists_runs_checks_freshness_and_charts() -> None:
    html = pages.home(_history(), pages.Links(dbt_index="dbt/index.html", gx_index="gx.html"), NOW)
    assert '<tr data-run="r1" data-pipeline="jaffle_daily">' in html
    assert '<td class="num rows">1,951</td>' in html
    assert '<td class="num failed">1</td>' in html
    assert html.count('<div class="card latest"') == 1 and "r2</a><br>" in html  # newest only
    assert '<td class="observed">-100</td>' in html and 'href="checks/gx-7.html"' in html
    assert "3.0 h ago" in html
    assert html.count("<svg") == 2 and html.count('class="bar failed"') == 2
    assert 'id="dbt-lineage" href="dbt/index.html"' in html


def test_pages_load_nothing_from_another_host() -> None:
    history = _history()
    links = pages.Links(dbt_index="dbt/index.html", gx_index="gx.html")
    rendered = [
        pages.home(history, links, NOW),
        pages.run_detail(history.runs[0], history.failed_checks, links),
        pages.check_detail(history.failed_checks[0], links),
        pages.gx_results(history, links),
    ]
    for html in rendered:
        assert not re.search(r"(src|href)=\"(https?:)?//", html)


def test_check_page_shows_observed_value_and_escapes_text() -> None:
    history = _history()
    check = history.failed_checks[0]
    check.observed = "<script>"
    html = pages.check_detail(check, pages.Links())
    assert '<td id="observed">&lt;script&gt;</td>' in html
    assert "&quot;unexpected_percent&quot;: 0.5" in html
    run_html = pages.run_detail(history.runs[0], [], pages.Links())
    assert "gate &lt;closed&gt;" in run_html


def test_gx_pages_lose_their_cdn_tags_but_keep_links() -> None:
    page = (
        '<html><head><link rel="stylesheet" href="https://cdn.example/b.css"/>'
        '<script src="https://code.example/jq.js"></script>'
        '<link rel="stylesheet" href="../static/local.css">'
        '<style>.x{background:url("https://img.example/a.png")}</style></head>'
        '<body><img src="https://s3.example/logo.png"><a href="https://gx.example">GX</a>'
        "<script>var a = 1;</script></body></html>"
    )
    offline = assets.strip_remote(page)
    assert "cdn.example" not in offline and "code.example" not in offline
    assert "img.example" not in offline and "s3.example" not in offline
    assert '<a href="https://gx.example">GX</a>' in offline
    assert 'href="../static/local.css"' in offline and "var a = 1;" in offline


def test_gx_pages_are_grouped_by_run(tmp_path: Path) -> None:
    gx = tmp_path / "gx"
    page = gx / "validations/jaffle_daily/orders/r1/20261130T120000Z/audit-orders.html"
    page.parent.mkdir(parents=True)
    page.write_text("<html></html>")
    other = gx / "validations/orders/r9/20261130T120000Z/audit-orders.html"
    other.parent.mkdir(parents=True)
    other.write_text("<html></html>")
    found = assets.gx_pages_by_run(gx, ["r1"])
    assert found == {
        "r1": [
            (
                "jaffle_daily.orders: audit-orders",
                "gx/validations/jaffle_daily/orders/r1/20261130T120000Z/audit-orders.html",
            )
        ]
    }


def test_a_failed_dbt_test_links_its_dbt_docs_page_and_shows_its_sql() -> None:
    check = FailedCheck(
        key="dbt-0-x",
        run_id="r2",
        kind="dbt",
        name="accepted_range_stg_shop__products_product_price__0",
        table="stg_shop__products",
        column="product_price",
        severity="fail",
        observed="1 failing row(s)",
        details={"unique_id": "test.elt.accepted_range_x.7623", "sql": "select 1 < 2"},
    )
    html = pages.check_detail(check, pages.Links(dbt_index="dbt/index.html#!/overview?g_v=1"))
    assert 'href="../dbt/index.html#!/test/test.elt.accepted_range_x.7623"' in html
    assert '<pre id="sql">select 1 &lt; 2</pre>' in html
    assert "<td>product_price</td>" in html and "&quot;sql&quot;" not in html
