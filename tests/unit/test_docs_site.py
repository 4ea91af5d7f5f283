"""The portal's pages, check status logic, charts and the offline rewrite of GX pages
(no services)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path

import pytest

from elt.config_sources import Freshness
from elt.config_values import parse_duration
from elt.docs_site import asset_pages, assets, charts, layout, pages
from elt.docs_site.catalog import Asset, Catalog, CheckHistory, Outcome, Volume
from elt.docs_site.history import History, RunSummary, SourceFreshness

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _run(run_id: str, minutes_ago: int, status: str = "succeeded", **kw) -> RunSummary:
    return RunSummary(
        run_id=run_id,
        pipeline="jaffle_daily",
        orchestrator="elt",
        status=status,
        started_at=NOW - timedelta(minutes=minutes_ago),
        duration_s=kw.pop("duration_s", 30.0),
        error=kw.pop("error", None),
        **kw,
    )


def _outcome(run_id: str, ok: bool, severity: str = "fail", observed: str = "0") -> Outcome:
    at = NOW - timedelta(minutes=int(run_id[1:]) * -1 + 60)
    return Outcome(run_id, at, ok, severity, observed, "≤ 10 % null")


def _check(*results: tuple[str, bool], severity: str = "fail", name: str = "c") -> CheckHistory:
    check = CheckHistory(f"gx-{name}", "gx", name, "customers", "first_ordered_at")
    check.outcomes = [_outcome(run_id, ok, severity) for run_id, ok in results]
    return check


def _history() -> History:
    steps = {"ingest_shop": "succeeded", "transform": "succeeded", "quality": "failed"}
    runs = [
        _run("r4", 5, warnings=1, published=True, steps={**steps, "quality": "succeeded"}),
        _run("r3", 10, published=True),
        _run(
            "r2",
            20,
            "failed",
            error="gate <closed>\n" + "line\n" * 40,
            steps=steps,
            skipped=["customers", "orders"],
        ),
        _run("r1", 30, published=True),
    ]
    resolved = _check(("r1", True), ("r2", False), ("r3", True), ("r4", True), name="range")
    warning = _check(("r1", True), ("r2", True), ("r3", True), ("r4", False), severity="warn")
    warning.outcomes[-1].observed = "20 (10.9 % of rows)"
    mart = Asset(
        kind="mart",
        name="customers",
        owner="data-team",
        pipeline="jaffle_daily",
        warn_after_s=43200,
        error_after_s=86400,
        last_run_id="r4",
        last_at=NOW,
        volumes=[Volume("r1", NOW - timedelta(hours=1), 100), Volume("r4", NOW, 120)],
        checks=[resolved, warning],
        upstream=["int_orders"],
        downstream=["export:jaffle_daily"],
    )
    raw = Asset(
        kind="raw",
        name="raw_shop.orders",
        source="shop",
        last_at=NOW,
        volumes=[Volume("r1", NOW, 634, None, 634), Volume("r4", NOW, 50, 5, 639)],
    )
    fresh = SourceFreshness("shop", NOW - timedelta(hours=3), "raw_shop", NOW)
    return History(runs=runs, freshness=[fresh], catalog=Catalog(marts=[mart], raw=[raw]))


def test_check_status_first_failing_and_resolving_run() -> None:
    check = _check(("r1", True), ("r2", False), ("r3", False), ("r4", True))
    assert check.status == "resolved"
    assert check.first_failing.run_id == "r2" and check.resolved_by.run_id == "r4"
    still = _check(("r1", False), ("r2", True), ("r3", False), ("r4", False))
    assert still.status == "open"
    assert still.first_failing.run_id == "r3" and still.resolved_by is None
    assert _check(("r1", True)).status == "passing"


def test_a_run_with_only_warnings_reads_succeeded_with_warnings() -> None:
    html = pages.runs_table(_history().runs)
    assert '<span class="status-warnings">succeeded with warnings</span>' in html
    assert '<span class="status-failed">failed</span>' in html


def test_home_separates_open_from_resolved_checks() -> None:
    html = pages.home(_history(), layout.Links())
    open_part = html.split('id="open-checks"')[1].split("</table>")[0]
    resolved_part = html.split('id="resolved-checks"')[1].split("</table>")[0]
    assert 'data-check="gx-c"' in open_part and "gx-range" not in open_part
    assert 'data-check="gx-range"' in resolved_part
    assert '<td class="resolved-by"><a href="runs/r3.html">r3</a></td>' in resolved_part
    assert '<td class="expected">≤ 10 % null</td>' in open_part
    assert 'class="check-open sev-warn"' in open_part


def test_mart_page_shows_freshness_thresholds_for_the_browser() -> None:
    mart = _history().catalog.marts[0]
    html = asset_pages.asset_detail(mart, {"customers"}, layout.Links())
    assert f'data-fresh-at="{NOW.isoformat()}" data-warn="43200" data-error="86400"' in html
    assert "12 h / 1 d" in html
    assert '<td class="fact-owner">data-team</td>' in html
    assert "export:jaffle_daily" in html and 'id="verdict">1 check(s) failing now' in html


def test_run_page_shows_the_full_error_skipped_models_and_nothing_published() -> None:
    history = _history()
    html = pages.run_detail(history.runs[2], history, layout.Links())
    assert 'id="nothing-published"' in html
    assert "gate &lt;closed&gt;" in html and html.count("line\n") == 40
    assert '<ul id="skipped"><li>customers</li><li>orders</li></ul>' in html
    grid = html.split('class="grid"')[1]
    assert '<tr data-step="quality">' in grid and 'class="cell-failed"' in grid


def test_raw_volume_chart_separates_new_from_re_merged_rows() -> None:
    raw = _history().catalog.raw[0]
    html = charts.volume_chart(raw)
    spec = json.loads(unescape(html.split('data-figure="')[1].rsplit('"', 1)[0]))
    series = {s["name"]: s for s in spec["data"]}
    assert series["new rows"]["y"] == [634, 5]
    assert series["re-merged rows"]["y"] == [0, 45]
    assert series["rows in table"]["y"] == [634, 639]
    assert spec["layout"]["xaxis"]["type"] == "date" and spec["layout"]["barmode"] == "stack"


def test_pages_load_nothing_from_another_host_and_escape_text() -> None:
    history = _history()
    links = layout.Links(dbt_index="dbt/index.html", gx_index="gx.html")
    check = history.catalog.marts[0].checks[1]
    check.outcomes[-1].observed = "<script>"
    rendered = [
        pages.home(history, links),
        pages.run_detail(history.runs[0], history, links),
        asset_pages.check_detail(check, links),
        pages.gx_results(history, links),
        pages.lineage(history, links, []),
    ]
    for html in rendered:
        assert not re.search(r"(src|href)=\"(https?:)?//", html)
        assert '<meta name="viewport"' in html
    assert '<span id="observed">&lt;script&gt;</span>' in rendered[2]


def test_a_failing_dbt_check_shows_its_sample_rows() -> None:
    check = _check(("r1", False))
    check.outcomes[0].details = {"sample": {"columns": ["customer_id"], "rows": [["c-<1>"]]}}
    html = asset_pages.check_detail(check, layout.Links())
    assert '<table class="failing-rows"><tr><th>customer_id</th></tr>' in html
    assert "<td>c-&lt;1&gt;</td>" in html


def test_gx_pages_load_libraries_locally_and_lose_the_newsletter() -> None:
    page = (
        '<html><head><link rel="stylesheet" href="https://maxcdn.example/4.3.1/css/bootstrap.min.css"/>'
        '<script src="https://code.jquery.com/jquery-3.7.1.min.js"></script>'
        '<script src="https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js"></script>'
        '<style>.x{background:url("https://img.example/a.png")}</style></head>'
        '<body class="x"><img src="https://s3.example/logo.png"><a href="https://gx.example">GX</a>'
        "<footer>\n  <p>Stay current with our newsletter <a href='https://gx.example/n'>Subscribe</a>"
        "</p>\n</footer></body></html>"
    )
    offline = assets.strip_remote(page, "../../")
    assert '<script src="../../assets/vendor/jquery.min.js"></script>' in offline
    assert '<link rel="stylesheet" href="../../assets/vendor/bootstrap.min.css">' in offline
    assert "bootstrap-table" not in offline and "img.example" not in offline
    assert "newsletter" not in offline and '<a href="https://gx.example">GX</a>' in offline
    assert '<body class="x"><div id="portal-bar" class=""><a href="../../index.html">' in offline


def test_static_assets_come_from_their_packages(tmp_path: Path) -> None:
    assets.write_static(tmp_path)
    vendor = tmp_path / "assets"
    assert (vendor / "plotly.min.js").stat().st_size > 1_000_000
    assert "jQuery" in (vendor / "vendor" / "jquery.min.js").read_text()[:200]
    assert (vendor / "vendor" / "fontawesome" / "css" / "all.min.css").exists()


def test_gx_pages_are_grouped_by_run(tmp_path: Path) -> None:
    gx = tmp_path / "gx"
    page = gx / "validations/jaffle_daily/orders/r1/20261130T120000Z/audit-orders.html"
    page.parent.mkdir(parents=True)
    page.write_text("<html></html>")
    found = assets.gx_pages_by_run(gx, ["r1"])
    assert found == {
        "r1": [
            (
                "jaffle_daily.orders: audit-orders",
                "gx/validations/jaffle_daily/orders/r1/20261130T120000Z/audit-orders.html",
            )
        ]
    }


def test_freshness_thresholds_must_be_ordered() -> None:
    ok = Freshness(warn_after=parse_duration("12h"), error_after=parse_duration("1d"))
    assert ok.error_after.total_seconds() == 86400
    with pytest.raises(ValueError, match="error_after is shorter than warn_after"):
        Freshness(warn_after=parse_duration("2d"), error_after=parse_duration("1d"))


def test_gx_links_to_pages_that_are_gone_lose_their_href(tmp_path: Path) -> None:
    (tmp_path / "expectations").mkdir()
    (tmp_path / "expectations" / "orders.html").write_text("<html></html>")
    page = tmp_path / "index.html"
    html = (
        '<a href="expectations/orders.html">o</a><a href="expectations/gone.html">g</a>'
        '<a href="../index.html">portal</a>'
    )
    kept = assets._drop_dead_links(html, page, tmp_path)
    assert '<a href="../index.html">portal</a>' in kept  # outside GX: written later
    assert '<a href="expectations/orders.html">o</a>' in kept
    assert '<a data-missing="expectations/gone.html">g</a>' in kept


def _node(name: str, schema: str, alias: str | None = None, kind: str = "model") -> dict:
    relation = f'"warehouse"."{schema}"."{alias or name}"'
    return {
        "resource_type": kind,
        "name": name,
        "alias": alias or name,
        "database": "warehouse",
        "schema": schema,
        "relation_name": relation,
        "config": {"meta": {"owner": "finance"}},
        "meta": {"owner": "finance"},
    }


def test_dbt_docs_name_the_published_relation_of_published_marts_only(tmp_path: Path) -> None:
    from elt.docs_site.published_relations import name_published

    nodes = {
        "model.acme.fct_revenue": _node("fct_revenue", "audit", alias="revenue"),  # aliased
        "model.acme.helper": _node("helper", "audit"),  # a table publish did not copy
        "model.acme.stg_orders": _node("stg_orders", "audit_staging"),
        "seed.acme.revenue": _node("revenue", "audit_seeds", kind="seed"),
    }
    (tmp_path / "manifest.json").write_text(json.dumps({"nodes": nodes}))
    catalog = {uid: {"metadata": {"schema": n["schema"]}} for uid, n in nodes.items()}
    (tmp_path / "catalog.json").write_text(json.dumps({"nodes": catalog}))

    changed = name_published(tmp_path, ["revenue"], "reporting", "audit")

    assert changed == ["model.acme.fct_revenue"]
    after = json.loads((tmp_path / "manifest.json").read_text())["nodes"]
    revenue = after["model.acme.fct_revenue"]
    assert revenue["relation_name"] == '"warehouse"."reporting"."revenue"'
    assert revenue["schema"] == "reporting"
    assert revenue["meta"] == {"owner": "finance", "elt_built_in": "audit.revenue"}
    assert after["model.acme.helper"]["relation_name"] == '"warehouse"."audit"."helper"'
    assert after["seed.acme.revenue"]["schema"] == "audit_seeds"
    schemas = {
        uid: e["metadata"]["schema"]
        for uid, e in json.loads((tmp_path / "catalog.json").read_text())["nodes"].items()
    }
    assert schemas["model.acme.fct_revenue"] == "reporting"
    assert schemas["model.acme.helper"] == "audit"
