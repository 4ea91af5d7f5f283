"""A page per published mart and raw table, and a page per check (pure functions).

The mart page answers "can I trust this today?": freshness against the thresholds of
``pipelines.yml`` (computed in the browser), open vs resolved checks, rows over time, lineage.
"""

from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import quote

from elt.docs_site import charts
from elt.docs_site.catalog import Asset, CheckHistory, Outcome
from elt.docs_site.layout import (
    Links,
    age,
    asset_page,
    freshness,
    layout,
    run_page,
    table,
    when,
)
from elt.docs_site.pages import by_status, checks_table


def _dbt_link(links: Links, route: str, css_id: str, what: str) -> str:
    """A link to a node's page in the copied dbt docs ('' without dbt docs)."""
    if not links.dbt_index:
        return ""
    page = links.dbt_index.split("#")[0]
    href = f"../{page}#!/{quote(route, safe='./')}"
    return f'<p><a id="{css_id}" href="{href}">this {what} in the dbt docs</a></p>'


def _lineage_list(names: list[str], known: set[str]) -> str:
    items = [
        f'<li><a href="../{asset_page(n)}">{escape(n)}</a></li>'
        if n in known
        else f"<li>{escape(n)}</li>"
        for n in names
    ]
    return f"<ul>{''.join(items) or '<li>none</li>'}</ul>"


def _threshold(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    hours = seconds / 3600
    return f"{hours / 24:g} d" if hours >= 24 else f"{hours:g} h"


def asset_detail(asset: Asset, known: set[str], links: Links) -> str:
    """A mart's or raw table's page."""
    kind = {"mart": "Published mart", "raw": "Raw table"}.get(asset.kind, "dbt model")
    last = (
        f'<a href="../{run_page(asset.last_run_id)}">{escape(asset.last_run_id)}</a>'
        if asset.last_run_id
        else "-"
    )
    facts = [
        ("owner", escape(asset.owner)),
        (
            "pipeline" if asset.kind == "mart" else "source",
            escape(asset.pipeline or asset.source or "-"),
        ),
        ("description", escape(asset.description or "-")),
        ("last " + ("published" if asset.kind == "mart" else "loaded") + " by run", last),
        ("at", f"{when(asset.last_at)} ({age(asset.last_at)})"),
        ("freshness", freshness(asset.last_at, asset.warn_after_s, asset.error_after_s)),
        (
            "warn after / error after",
            f"{_threshold(asset.warn_after_s)} / {_threshold(asset.error_after_s)}",
        ),
        ("rows", f"{asset.volumes[-1].rows:,}" if asset.volumes else "-"),
    ]
    rows = "".join(
        f'<tr><th>{k}</th><td class="fact-{k.split()[0]}">{v}</td></tr>' for k, v in facts
    )
    open_checks = asset.open_checks
    worst = "fail" if any(c.latest.severity == "fail" for c in open_checks) else "warn"
    verdict = (
        f'<div class="banner {worst}" id="verdict">{len(open_checks)} check(s) failing now</div>'
        if open_checks
        else '<div class="banner" id="verdict">every check passes in its latest run</div>'
    )
    route = f"model/model.elt.{asset.name}"
    dbt = _dbt_link(links, route, "dbt-model", "model") if asset.kind != "raw" else ""
    body = (
        f"<h1>{kind}: {escape(asset.name)}</h1>{verdict}"
        f'<div class="scroll"><table id="facts">{rows}</table></div>{dbt}'
        f"<h2>Checks</h2>{checks_table(by_status(asset.checks), '../', 'asset-checks')}"
        + "".join(
            f'<div class="open-sample" data-check="{escape(c.key)}">'
            f"{_sample(c.latest.details, f'{escape(c.name)}: sample failing rows')}</div>"
            for c in open_checks
        )
        + f"<h2>Rows over time</h2>{charts.volume_chart(asset)}"
        + f"<h2>Upstream</h2>{_lineage_list(asset.upstream, known)}"
        + f"<h2>Downstream</h2>{_lineage_list(asset.downstream, known)}"
    )
    return layout(f"{asset.name}", body, "../", links, charts=True)


def _sample(details: dict[str, Any], title: str = "Sample failing rows") -> str:
    sample = details.get("sample")
    if sample:
        rows = [
            "<tr>" + "".join(f"<td>{escape(str(v))}</td>" for v in row) + "</tr>"
            for row in sample["rows"]
        ]
        return f"<h2>{title}</h2>" + table(
            [str(c) for c in sample["columns"]], rows, class_="failing-rows"
        )
    values = details.get("partial_unexpected_list")
    if values:
        items = "".join(f"<li>{escape(str(v))}</li>" for v in values[:20])
        return f'<h2>Sample unexpected values</h2><ul id="failing-values">{items}</ul>'
    return ""


def check_detail(check: CheckHistory, links: Links) -> str:
    """A check's page: its status now, the last failure in detail, and its history."""
    shown = check.last_failure or check.latest
    first, resolved = check.first_failing, check.resolved_by
    open_css = f" sev-{shown.severity}" if check.status == "open" else ""

    def run_link(outcome: Outcome | None) -> str:
        if outcome is None:
            return "-"
        return f'<a href="../{run_page(outcome.run_id)}">{escape(outcome.run_id)}</a>'

    facts = [
        (
            "status",
            f'<span class="check-{check.status}{open_css}" id="status">{check.status}</span>',
        ),
        ("kind", "Great Expectations" if check.kind == "gx" else "dbt test"),
        ("on", f'<a href="../{asset_page(check.table)}">{escape(check.table)}</a>'),
        ("column", escape(check.column or "-")),
        ("severity", f'<span class="sev-{shown.severity}">{shown.severity}</span>'),
        ("expected", f'<span id="expected">{escape(shown.expected or "-")}</span>'),
        ("observed", f'<span id="observed">{escape(shown.observed)}</span>'),
        ("first failing run", run_link(first)),
        ("resolved by", run_link(resolved)),
    ]
    rows = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in facts)
    history = [
        f'<tr data-run="{escape(o.run_id)}"><td>{run_link(o)}</td><td>{when(o.at)}</td>'
        f'<td class="{"check-passing" if o.success else "sev-" + o.severity}">'
        f"{'pass' if o.success else o.severity}</td><td>{escape(o.observed)}</td></tr>"
        for o in reversed(check.outcomes)
    ]
    message = shown.details.get("message") or shown.details.get("error")
    dbt = _dbt_link(links, f"test/{check.unique_id}", "dbt-test", "test") if check.unique_id else ""
    body = (
        f"<h1>Check: {escape(check.name)}</h1>"
        f'<div class="scroll"><table id="check-facts">{rows}</table></div>'
        + (f'<pre id="message">{escape(str(message))}</pre>' if message else "")
        + _sample(shown.details)
        + dbt
        + "<h2>History</h2>"
        + table(["run", "at", "result", "observed"], history, id="check-history")
    )
    return layout(f"check {check.name}", body, "../", links)
