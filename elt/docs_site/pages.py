"""The portal's run-centred pages: home, run detail, step grid, GX results (pure functions).

Asset (mart / raw table) and check pages are in ``asset_pages``; the shared frame in ``layout``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass

from html import escape

from elt import settings
from elt.docs_site import charts, lineage_graph
from elt.docs_site.catalog import Asset, CheckHistory
from elt.docs_site.history import History, RunSummary, SourceFreshness
from elt.docs_site.layout import (
    Links,
    age,
    asset_page,
    check_page,
    duration,
    freshness,
    layout,
    run_page,
    status,
    table,
    when,
)

GRID_RUNS = 20  # runs per pipeline in the step grid


def _run_row(run: RunSummary, root: str) -> str:
    return (
        f'<tr data-run="{escape(run.run_id)}" data-pipeline="{escape(run.pipeline)}">'
        f'<td><a href="{root}{run_page(run.run_id)}">{escape(run.run_id)}</a></td>'
        f"<td>{escape(run.pipeline)}</td><td>{status(run.label)}</td>"
        f"<td>{when(run.started_at)}</td>"
        f'<td class="num">{duration(run.duration_s)}</td>'
        f'<td class="num rows">{run.rows_loaded:,}</td>'
        f'<td class="num passed">{run.checks_passed:,}</td>'
        f'<td class="num failed">{run.checks_failed:,}</td></tr>'
    )


def runs_table(runs: list[RunSummary], root: str = "") -> str:
    """The table of runs (newest first)."""
    head = [
        "run",
        "pipeline",
        "status",
        "started",
        "duration",
        "rows loaded",
        "checks passed",
        "checks failed",
    ]
    return table(head, [_run_row(run, root) for run in runs], id="runs")


def step_grid(runs: list[RunSummary], pipeline: str, root: str = "") -> str:
    """Runs × steps of one pipeline, like Airflow's grid: a cell per step, coloured by status."""
    chosen = [r for r in runs if r.pipeline == pipeline][:GRID_RUNS][::-1]  # oldest left
    steps: list[str] = []
    for run in chosen:
        steps += [s for s in run.steps if s not in steps]
    head = "".join(
        f'<th><a href="{root}{run_page(r.run_id)}" title="{escape(r.run_id)}">'
        f"{r.started_at:%m-%d %H:%M:%S}</a></th>"
        for r in chosen
    )
    rows = []
    for step in steps:
        cells = "".join(
            f'<td class="cell-{escape(r.steps.get(step, "skipped"))}"'
            f' title="{escape(r.run_id)}: {escape(r.steps.get(step, "not run"))}">'
            f"{escape(r.steps.get(step, '·')[:4])}</td>"
            for r in chosen
        )
        rows.append(f'<tr data-step="{escape(step)}"><th>{escape(step)}</th>{cells}</tr>')
    return (
        f'<div class="scroll"><table class="grid" data-pipeline="{escape(pipeline)}">'
        f"<tr><th>step \\ run</th>{head}</tr>{''.join(rows)}</table></div>"
    )


def _latest_card(run: RunSummary, root: str) -> str:
    gate = "" if run.published or run.ok else '<p class="sev-fail">nothing published</p>'
    return (
        f'<div class="card latest" data-pipeline="{escape(run.pipeline)}">'
        f"<h3>{escape(run.pipeline)} {status(run.label)}</h3>"
        f'<p><a href="{root}{run_page(run.run_id)}">{escape(run.run_id)}</a><br>'
        f"{when(run.started_at)} ({age(run.started_at)}) · {duration(run.duration_s)}"
        f" · checks {run.checks_passed:,} passed, {run.checks_failed:,} failed</p>{gate}</div>"
    )


def _asset_row(asset: Asset, root: str) -> str:
    open_checks = asset.open_checks
    worst = "fail" if any(c.latest.severity == "fail" for c in open_checks) else "warn"
    checks = (
        f'<span class="sev-{worst}">{len(open_checks)} open</span>'
        if open_checks
        else f'<span class="check-passing">{len(asset.checks)} passing</span>'
    )
    return (
        f'<tr data-asset="{escape(asset.name)}">'
        f'<td><a href="{root}{asset_page(asset.name)}">{escape(asset.name)}</a></td>'
        f"<td>{escape(asset.owner)}</td>"
        f"<td>{freshness(asset.last_at, asset.warn_after_s, asset.error_after_s)}</td>"
        f"<td>{when(asset.last_at)}</td>"
        f'<td class="num">{asset.volumes[-1].rows if asset.volumes else 0:,}</td>'
        f"<td>{checks}</td></tr>"
    )


def assets_table(assets: list[Asset], css_id: str, root: str = "") -> str:
    """Marts or raw tables with owner, freshness, last publish/load, rows and open checks."""
    head = ["name", "owner", "freshness", "last published / loaded", "rows", "checks"]
    return table(head, [_asset_row(a, root) for a in assets], id=css_id)


def checks_table(checks: list[CheckHistory], root: str, css_id: str) -> str:
    """Checks with their status, severity, expected vs observed and runs."""
    rows = []
    for check in checks:
        shown = check.last_failure or check.latest
        resolved = check.resolved_by
        open_css = f" sev-{shown.severity}" if check.status == "open" else ""
        rows.append(
            f'<tr data-check="{escape(check.key)}" data-status="{check.status}">'
            f'<td><a href="{root}{check_page(check.key)}">{escape(check.name)}</a></td>'
            f'<td><a href="{root}{asset_page(check.table)}">{escape(check.table)}</a></td>'
            f'<td class="check-{check.status}{open_css}">{check.status}</td>'
            f'<td class="severity{open_css}">{shown.severity}</td>'
            f'<td class="expected">{escape(shown.expected or "-")}</td>'
            f'<td class="observed">{escape(shown.observed)}</td>'
            f'<td><a href="{root}{run_page(shown.run_id)}">{escape(shown.run_id)}</a></td>'
            + (
                f'<td class="resolved-by"><a href="{root}{run_page(resolved.run_id)}">'
                f"{escape(resolved.run_id)}</a></td>"
                if resolved
                else "<td>-</td>"
            )
            + "</tr>"
        )
    head = ["check", "on", "status", "severity", "expected", "observed", "failed in", "resolved by"]
    if not rows:
        return f'<p class="muted" id="{css_id}">none</p>'
    return table(head, rows, id=css_id)


def _freshness_table(sources: list[SourceFreshness]) -> str:
    rows = [
        f'<tr data-source="{escape(f.source)}"><td>{escape(f.source)}</td>'
        f"<td>{escape(f.dataset or '-')}</td><td>{when(f.last_loaded_at)}</td>"
        f"<td>{age(f.last_loaded_at)}</td><td>{when(f.dlt_last_load_at)}</td></tr>"
        for f in sources
    ]
    head = ["source", "dataset", "last load (elt_meta)", "age", "last load with data (_dlt_loads)"]
    note = (
        '<p class="muted">A load that found nothing new is recorded in elt_meta.loads with 0 rows;'
        " dlt writes a row to _dlt_loads only when it loaded data, so the two can differ.</p>"
    )
    return table(head, rows, id="freshness") + note


def home(history: History, links: Links) -> str:
    """The home page: latest runs, marts, open checks, raw tables, step grid, charts, runs."""
    the_catalog = history.catalog
    cards = "".join(_latest_card(run, "") for run in history.latest_per_pipeline())
    failing = [c for c in the_catalog.checks if c.status == "open"]
    resolved = [c for c in the_catalog.checks if c.status == "resolved"]
    pipelines = sorted({r.pipeline for r in history.runs})
    body = (
        "<h1>Can I trust this data today?</h1>"
        f'<h2>Last run per pipeline</h2><div class="cards">{cards or "no runs yet"}</div>'
        f'<h2 id="marts">Published marts</h2>{assets_table(the_catalog.marts, "mart-list")}'
        f"<h2>Open checks (failing in their latest run)</h2>"
        f"{checks_table(failing, '', 'open-checks')}"
        f"<h2>Resolved checks</h2>{checks_table(resolved, '', 'resolved-checks')}"
        f'<h2 id="raw">Raw tables</h2>{assets_table(the_catalog.raw, "raw-list")}'
        f"<h2>Source loads</h2>{_freshness_table(history.freshness)}"
        + "".join(f"<h2>Steps of {escape(p)}</h2>{step_grid(history.runs, p)}" for p in pipelines)
        + "".join(charts.run_charts(history.runs, p) for p in pipelines)
        + f"<h2>Runs</h2>{runs_table(history.runs)}"
    )
    return layout("ELT data docs", body, "", links, charts=bool(pipelines))


def run_detail(run: RunSummary, history: History, links: Links) -> str:
    """A run's page: status, full error, what was skipped or not published, steps, checks."""
    gx = "".join(
        f'<li><a class="gx-run" href="../{escape(path)}">{escape(label)}</a></li>'
        for label, path in links.gx_pages.get(run.run_id, [])
    )
    failed = [
        c
        for c in history.catalog.checks
        if any(o.run_id == run.run_id and not o.success for o in c.outcomes)
    ]
    banner = ""
    if not run.ok and not run.published:
        banner = (
            '<div class="banner fail" id="nothing-published"><b>Nothing published.</b>'
            " The quality gate closed or a step failed before publish: readers still see the"
            " marts of the last good run.</div>"
        )
    elif run.warnings:
        banner = f'<div class="banner warn">Published, with {run.warnings} warning(s).</div>'
    error = f'<h2>Error</h2><pre id="error">{escape(run.error)}</pre>' if run.error else ""
    skipped = (
        '<h2>Skipped models</h2><ul id="skipped">'
        + "".join(f"<li>{escape(name)}</li>" for name in run.skipped)
        + "</ul>"
        if run.skipped
        else ""
    )
    tables = [
        f'<tr data-table="{escape(name)}"><td>{escape(name)}</td>'
        f'<td class="num">{count:,}</td></tr>'
        for name, count in sorted(run.tables.items())
    ]
    body = (
        f"<h1>{escape(run.pipeline)}: run {escape(run.run_id)}</h1>{banner}"
        f"{runs_table([run], '../')}{error}{skipped}"
        "<h2>Steps (this run and the ones around it)</h2>"
        f"{step_grid(history.runs, run.pipeline, '../')}"
        f"<h2>Checks that failed in this run</h2>{checks_table(failed, '../', 'failed-checks')}"
        f"<h2>Rows loaded per table</h2>{table(['table', 'rows'], tables, class_='tables')}"
        f"<h2>GX validation results</h2><ul>{gx or '<li>none</li>'}</ul>"
    )
    return layout(f"run {run.run_id}", body, "../", links)


def by_status(checks: list[CheckHistory]) -> list[CheckHistory]:
    """Open checks first, then resolved, then passing."""
    order = {"open": 0, "resolved": 1, "passing": 2}
    return sorted(checks, key=lambda c: (order[c.status], c.table, c.name))


def checks_index(history: History, links: Links) -> str:
    """Every check: open first, then resolved, then passing."""
    body = f"<h1>Checks</h1>{checks_table(by_status(history.catalog.checks), '', 'all-checks')}"
    return layout("checks", body, "", links)


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
                f"{status(run.label)}</h2><ul>{items}</ul>"
            )
    body = (
        "<h1>GX Data Docs: suite results per run</h1>"
        '<p><a href="gx/index.html">GX\'s own index</a></p>'
        + ("".join(sections) or "<p>no GX results yet</p>")
    )
    return layout("GX Data Docs", body, "", links)


def lineage(history: History, links: Links, events: list[dict[str, Any]]) -> str:
    """End-to-end lineage from the latest runs' OpenLineage events: source → raw → audit →
    published → export, each dataset coloured by its latest check status."""
    graph = lineage_graph.from_events(events, settings.published_schema())
    rows = lineage_graph.edge_rows(graph)
    body = (
        "<h1>Lineage</h1>"
        '<p class="muted">Drawn from the OpenLineage events of the latest run of each pipeline'
        " (the same events sent to lineage.url, or written to .elt/lineage).</p>"
        + (lineage_graph.draw(graph, history.catalog) if rows else "<p>no lineage events yet</p>")
        + table(["from", "to", "job"], rows, id="edges")
    )
    return layout("lineage", body, "", links, charts=bool(rows))
