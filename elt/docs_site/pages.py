"""The portal's HTML pages, rendered from a ``History`` (pure functions: no I/O).

Every page links one local stylesheet (``style.css``) and nothing else: it works offline.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from urllib.parse import quote

from elt.docs_site.history import FailedCheck, History, RunSummary, SourceFreshness
from elt.docs_site.svg import Point, bar_chart

CHART_RUNS = 30  # runs per pipeline in the charts

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1f2933;
background:#f7f8fa}
header{background:#1f2933;color:#fff;padding:12px 24px;display:flex;gap:24px;align-items:center}
header a{color:#cfe3ff;text-decoration:none}header .brand{font-weight:600;color:#fff}
main{padding:16px 24px;max-width:1200px}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:28px}
table{border-collapse:collapse;background:#fff;margin:8px 0}
th,td{border:1px solid #d9dde3;padding:4px 10px;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.status-succeeded{color:#137333;font-weight:600}.status-failed{color:#b3261e;font-weight:600}
.status-running{color:#8a6d00;font-weight:600}
.cards{display:flex;flex-wrap:wrap;gap:16px}
.card{background:#fff;border:1px solid #d9dde3;border-radius:6px;padding:12px 16px;min-width:300px}
.chart{background:#fff;border:1px solid #d9dde3;margin:4px 16px 4px 0}
.chart .bar{fill:#4a7bd0}.chart .bar.failed{fill:#d0554a}
.chart .trend{stroke:#1f2933;stroke-width:1.5;stroke-opacity:.5}
.chart .grid{stroke:#e3e6ea}.chart .tick{font-size:11px;fill:#52606d}
.chart .caption{font-size:13px;font-weight:600;fill:#1f2933}
pre{background:#fff;border:1px solid #d9dde3;padding:8px;overflow:auto}
.muted{color:#7b8794}
"""


@dataclass
class Links:
    """Where the copied docs are, relative to the site root (None: not available)."""

    dbt_index: str | None = None
    gx_index: str | None = None
    gx_pages: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # run -> (label, path)


def run_page(run_id: str) -> str:
    """The path of a run's page, relative to the site root."""
    return f"runs/{quote(run_id, safe='')}.html"


def check_page(check: FailedCheck) -> str:
    """The path of a failed check's page, relative to the site root."""
    return f"checks/{quote(check.key, safe='')}.html"


def _layout(title: str, body: str, root: str, links: Links) -> str:
    nav = [f'<a class="brand" href="{root}index.html">ELT data docs</a>']
    if links.dbt_index:
        nav.append(f'<a id="nav-dbt" href="{root}{links.dbt_index}">dbt docs (lineage)</a>')
    if links.gx_index:
        nav.append(f'<a id="nav-gx" href="{root}{links.gx_index}">GX Data Docs</a>')
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title>"
        f'<link rel="stylesheet" href="{root}style.css"></head><body>'
        f"<header>{''.join(nav)}</header><main>{body}</main></body></html>"
    )


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _age(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    seconds = max(0.0, (now - moment).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit} ago"
    return f"{seconds:.0f} s ago"


def _status(status: str) -> str:
    return f'<span class="status-{escape(status)}">{escape(status)}</span>'


def _run_row(run: RunSummary, root: str) -> str:
    return (
        f'<tr data-run="{escape(run.run_id)}" data-pipeline="{escape(run.pipeline)}">'
        f'<td><a href="{root}{run_page(run.run_id)}">{escape(run.run_id)}</a></td>'
        f"<td>{escape(run.pipeline)}</td><td>{_status(run.status)}</td>"
        f"<td>{_when(run.started_at)}</td>"
        f'<td class="num">{_duration(run.duration_s)}</td>'
        f'<td class="num rows">{run.rows_loaded:,}</td>'
        f'<td class="num passed">{run.checks_passed:,}</td>'
        f'<td class="num failed">{run.checks_failed:,}</td></tr>'
    )


def runs_table(runs: list[RunSummary], root: str = "") -> str:
    """The table of runs (newest first)."""
    head = (
        "<tr><th>run</th><th>pipeline</th><th>status</th><th>started</th><th>duration</th>"
        "<th>rows loaded</th><th>checks passed</th><th>checks failed</th></tr>"
    )
    rows = "".join(_run_row(run, root) for run in runs)
    return f'<table id="runs">{head}{rows}</table>'


def _tables_table(tables: dict[str, int]) -> str:
    rows = "".join(
        f'<tr data-table="{escape(name)}"><td>{escape(name)}</td>'
        f'<td class="num">{count:,}</td></tr>'
        for name, count in sorted(tables.items())
    )
    return f'<table class="tables"><tr><th>table</th><th>rows</th></tr>{rows}</table>'


def _latest_card(run: RunSummary, links: Links) -> str:
    gx = "".join(
        f'<li><a class="gx-run" href="{escape(path)}">{escape(label)}</a></li>'
        for label, path in links.gx_pages.get(run.run_id, [])[:6]
    )
    return (
        f'<div class="card latest" data-pipeline="{escape(run.pipeline)}">'
        f"<h3>{escape(run.pipeline)} {_status(run.status)}</h3>"
        f'<p><a href="{run_page(run.run_id)}">{escape(run.run_id)}</a><br>'
        f"{_when(run.started_at)} · {_duration(run.duration_s)} · {run.rows_loaded:,} rows"
        f" · checks {run.checks_passed:,} passed, {run.checks_failed:,} failed</p>"
        f"{_tables_table(run.tables)}"
        + (f"<p>GX results of this run:</p><ul>{gx}</ul>" if gx else "")
        + "</div>"
    )


def _freshness_table(freshness: list[SourceFreshness], now: datetime) -> str:
    rows = "".join(
        f'<tr data-source="{escape(f.source)}"><td>{escape(f.source)}</td>'
        f"<td>{escape(f.dataset or '-')}</td><td>{_when(f.last_loaded_at)}</td>"
        f"<td>{_age(f.last_loaded_at, now)}</td><td>{_when(f.dlt_last_load_at)}</td></tr>"
        for f in freshness
    )
    return (
        '<table id="freshness"><tr><th>source</th><th>dataset</th><th>last load</th>'
        f"<th>age</th><th>last dlt load (_dlt_loads)</th></tr>{rows}</table>"
    )


def charts(runs: list[RunSummary]) -> str:
    """Duration and rows-loaded charts per pipeline, oldest run first."""
    by_pipeline: dict[str, list[RunSummary]] = {}
    for run in reversed(runs):  # runs come newest first
        by_pipeline.setdefault(run.pipeline, []).append(run)
    parts = []
    for pipeline in sorted(by_pipeline):
        chosen = by_pipeline[pipeline][-CHART_RUNS:]
        label = [r.started_at.astimezone(UTC).strftime("%m-%d %H:%M") for r in chosen]
        pairs = list(zip(label, chosen, strict=True))
        duration = [Point(lb, r.duration_s or 0.0, r.ok) for lb, r in pairs]
        rows = [Point(lb, float(r.rows_loaded), r.ok) for lb, r in pairs]
        parts.append(
            f'<div class="charts" data-pipeline="{escape(pipeline)}"><h3>{escape(pipeline)}</h3>'
            + bar_chart(duration, title=f"{pipeline}: run duration (s)", unit=" s")
            + bar_chart(rows, title=f"{pipeline}: rows loaded per run")
            + "</div>"
        )
    return "".join(parts) or '<p class="muted">no runs yet</p>'


def _failed_list(failed: list[FailedCheck], root: str) -> str:
    if not failed:
        return '<p class="muted" id="failed-checks">no failed checks</p>'
    rows = "".join(
        f'<tr data-check="{escape(c.key)}"><td><a href="{root}{check_page(c)}">{escape(c.name)}</a>'
        f"</td><td>{escape(c.kind)}</td><td>{escape(c.table or '-')}</td>"
        f"<td>{escape(c.column or '-')}</td><td>{escape(c.severity)}</td>"
        f'<td class="observed">{escape(c.observed)}</td>'
        f'<td><a href="{root}{run_page(c.run_id)}">{escape(c.run_id)}</a></td></tr>'
        for c in failed
    )
    return (
        '<table id="failed-checks"><tr><th>check</th><th>kind</th><th>table</th><th>column</th>'
        f"<th>severity</th><th>observed</th><th>run</th></tr>{rows}</table>"
    )


def home(history: History, links: Links, now: datetime | None = None) -> str:
    """The home page: latest run per pipeline, freshness, charts, all runs, failed checks."""
    now = now or datetime.now(UTC)
    docs = []
    if links.dbt_index:
        docs.append(
            f'<a id="dbt-lineage" href="{links.dbt_index}">dbt docs: models, lineage graph</a>'
        )
    if links.gx_index:
        docs.append(f'<a id="gx-docs" href="{links.gx_index}">GX Data Docs: suite results</a>')
    cards = "".join(_latest_card(run, links) for run in history.latest_per_pipeline())
    body = (
        "<h1>Data docs</h1>"
        f'<p class="muted">built {_when(now)}</p>'
        f"<p>{' · '.join(docs) or 'no dbt or GX docs built yet'}</p>"
        f'<h2>Last run per pipeline</h2><div class="cards">{cards or "no runs yet"}</div>'
        f"<h2>Source freshness</h2>{_freshness_table(history.freshness, now)}"
        f"<h2>Run duration and rows over time</h2>{charts(history.runs)}"
        f"<h2>Failed checks</h2>{_failed_list(history.failed_checks, '')}"
        f"<h2>Runs</h2>{runs_table(history.runs)}"
    )
    return _layout("ELT data docs", body, "", links)


def run_detail(run: RunSummary, failed: list[FailedCheck], links: Links) -> str:
    """A run's page: its totals, tables loaded, GX result pages and failed checks."""
    gx = "".join(
        f'<li><a class="gx-run" href="../{escape(path)}">{escape(label)}</a></li>'
        for label, path in links.gx_pages.get(run.run_id, [])
    )
    error = f"<h2>Error</h2><pre>{escape(run.error)}</pre>" if run.error else ""
    body = (
        f"<h1>{escape(run.pipeline)}: run {escape(run.run_id)}</h1>"
        f"{runs_table([run], '../')}{error}"
        f"<h2>Rows loaded per table</h2>{_tables_table(run.tables)}"
        f"<h2>Failed checks</h2>{_failed_list(failed, '../')}"
        f"<h2>GX validation results</h2><ul>{gx or '<li>none</li>'}</ul>"
    )
    return _layout(f"run {run.run_id}", body, "../", links)


def _dbt_test_link(check: FailedCheck, links: Links) -> str:
    unique_id = check.details.get("unique_id")
    if check.kind != "dbt" or not unique_id or not links.dbt_index:
        return ""
    page = links.dbt_index.split("#")[0]
    return (
        f'<p><a id="dbt-test" href="../{page}#!/test/{quote(unique_id, safe=".")}">'
        "this test in the dbt docs</a></p>"
    )


def check_detail(check: FailedCheck, links: Links) -> str:
    """A failed check's page, with its observed value and everything GX or dbt said."""
    gx = "".join(
        f'<li><a class="gx-run" href="../{escape(path)}">{escape(label)}</a></li>'
        for label, path in links.gx_pages.get(check.run_id, [])
        if check.suite and check.suite.split(".")[-1] in path
    )
    fields = [
        ("check", check.name),
        ("kind", "Great Expectations" if check.kind == "gx" else "dbt test"),
        ("suite", check.suite or "-"),
        ("stage", check.stage or "-"),
        ("table", check.table or "-"),
        ("column", check.column or "-"),
        ("severity", check.severity),
    ]
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in fields)
    details = {k: v for k, v in check.details.items() if k != "sql"}
    sql = check.details.get("sql")
    body = (
        f"<h1>Failed check: {escape(check.name)}</h1>"
        f'<p>run <a href="../{run_page(check.run_id)}">{escape(check.run_id)}</a></p>'
        f"<table>{rows}<tr><th>observed</th>"
        f'<td id="observed">{escape(check.observed)}</td></tr></table>'
        f"<h2>Details</h2><pre>{escape(json.dumps(details, indent=2, default=str))}</pre>"
        + (f'<h2>Test SQL</h2><pre id="sql">{escape(sql)}</pre>' if sql else "")
        + (f"<h2>GX validation result</h2><ul>{gx}</ul>" if gx else "")
        + _dbt_test_link(check, links)
    )
    return _layout(f"failed check {check.name}", body, "../", links)


def gx_results(history: History, links: Links) -> str:
    """The GX Data Docs entry: each run's validation result pages, newest run first."""
    sections = []
    for run in history.runs:
        items = "".join(
            f'<li><a class="gx-run" href="{escape(path)}">{escape(label)}</a></li>'
            for label, path in links.gx_pages.get(run.run_id, [])
        )
        if items:
            sections.append(
                f'<h2 data-run="{escape(run.run_id)}">{escape(run.pipeline)} · '
                f'<a href="{run_page(run.run_id)}">{escape(run.run_id)}</a> '
                f"{_status(run.status)}</h2><ul>{items}</ul>"
            )
    body = (
        "<h1>GX Data Docs: suite results per run</h1>"
        '<p><a href="gx/index.html">GX\'s own index</a> (its filters need JavaScript from a CDN,'
        " so offline it shows less)</p>" + ("".join(sections) or "<p>no GX results yet</p>")
    )
    return _layout("GX Data Docs", body, "", links)
