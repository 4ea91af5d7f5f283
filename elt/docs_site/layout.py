"""The frame every portal page shares: header with search, stylesheet, small formatters.

Ages and freshness are computed in the browser (``portal.js``) from ISO timestamps, so a page
built an hour ago still says how old the data is *now*.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from urllib.parse import quote

STYLE = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1f2933;
background:#f7f8fa}
header.portal{background:#1f2933;color:#fff;padding:8px 16px;display:flex;flex-wrap:wrap;
gap:8px 18px;align-items:center;width:100%}
header.portal a{color:#cfe3ff;text-decoration:none}header.portal .brand{font-weight:600;color:#fff}
header.portal .search{position:relative;margin-left:auto}
#search{padding:4px 8px;border-radius:4px;border:0;width:14rem;max-width:60vw}
#search-results{position:absolute;right:0;z-index:10;background:#fff;list-style:none;margin:2px 0;
padding:0;min-width:14rem;box-shadow:0 2px 8px #0004}
#search-results a{display:block;padding:4px 8px;color:#1f2933}
main{padding:12px 16px;max-width:1200px}
h1{font-size:1.4rem;overflow-wrap:anywhere}h2{font-size:1.1rem;margin-top:24px}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;background:#fff;margin:8px 0}
th,td{border:1px solid #d9dde3;padding:4px 8px;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td:first-child{overflow-wrap:anywhere;min-width:10ch}
.status-succeeded,.fresh-fresh,.check-passing,.check-resolved{color:#137333;font-weight:600}
.status-failed,.status-error,.fresh-error,.check-open.sev-fail,.sev-fail{color:#b3261e;
font-weight:600}
.status-running{color:#8a6d00;font-weight:600}
.status-warnings,.fresh-warn,.check-open.sev-warn,.sev-warn{color:#a15c00;font-weight:600}
.cell-succeeded{background:#cdeccf}.cell-failed{background:#f6c6c2}.cell-skipped{background:#eee}
.cell-running{background:#fbe6a8}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{background:#fff;border:1px solid #d9dde3;border-radius:6px;padding:10px 14px;
max-width:100%}
.plot{background:#fff;border:1px solid #d9dde3;margin:6px 0;width:100%;max-width:900px;
height:300px}
pre{background:#fff;border:1px solid #d9dde3;padding:8px;white-space:pre-wrap;
overflow-wrap:anywhere}
li,p,pre{overflow-wrap:anywhere}
.muted{color:#7b8794}.banner{padding:8px 12px;border-radius:4px;margin:8px 0}
.banner.fail{background:#fbe3e1;border:1px solid #b3261e}
.banner.warn{background:#fff1d6;border:1px solid #a15c00}
"""

BACK_BAR_STYLE = (
    "#portal-bar{position:sticky;top:0;z-index:2000;background:#1f2933;padding:6px 12px;"
    "font:14px system-ui,sans-serif}#portal-bar a{color:#cfe3ff;text-decoration:none}"
    # dbt's own header is fixed at the top: the bar floats bottom-left there instead
    "#portal-bar.float{position:fixed;top:auto;bottom:12px;left:12px;border-radius:6px}"
)
# GX tables are wider than a phone: they scroll inside themselves, not the page
GX_STYLE = "table{display:block;overflow-x:auto;max-width:100%}"
# dbt's app is 960 px wide at least (a 300 px project tree beside the page) and clips the
# rest on a phone: there the tree goes (dbt's search stays) and the page takes the width
DBT_NARROW_STYLE = (
    "@media (max-width:700px){body,.app{min-width:0!important;width:100%!important}"
    ".app-menu{display:none!important}.app-content{width:100%!important;left:0!important}"
    ".app-content .app-body{overflow-x:auto}.detail-body{white-space:normal!important}}"
)


@dataclass
class Links:
    """Where the copied docs are, relative to the site root (None: not available)."""

    dbt_index: str | None = None
    gx_index: str | None = None
    gx_pages: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # run -> (label, path)


def slug(text: str) -> str:
    """A file-name-safe form of ``text``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:120]


def run_page(run_id: str) -> str:
    """The path of a run's page, relative to the site root."""
    return f"runs/{quote(slug(run_id), safe='')}.html"


def asset_page(name: str) -> str:
    """The path of a mart's or raw table's page."""
    return f"assets/{slug(name)}.html"


def check_page(key: str) -> str:
    """The path of a check's page."""
    return f"checks/{slug(key)}.html"


def back_bar(root: str, css: str = "") -> str:
    """The bar injected at the top of dbt and GX pages: the way back to the portal."""
    return (
        f'<div id="portal-bar" class="{css}"><a href="{root}index.html">← ELT data docs</a> · '
        f'<a href="{root}index.html#marts">marts</a> · <a href="{root}checks.html">checks</a>'
        "</div>"
    )


def layout(title: str, body: str, root: str, links: Links, *, charts: bool = False) -> str:
    """A full page: header (portal, marts, checks, dbt, GX, search) and ``body``."""
    nav = [
        f'<a class="brand" href="{root}index.html">ELT data docs</a>',
        f'<a href="{root}index.html#marts">marts</a>',
        f'<a id="nav-checks" href="{root}checks.html">checks</a>',
        f'<a id="nav-lineage" href="{root}lineage.html">lineage</a>',
    ]
    if links.dbt_index:
        nav.append(f'<a id="nav-dbt" href="{root}{links.dbt_index}">dbt docs</a>')
    if links.gx_index:
        nav.append(f'<a id="nav-gx" href="{root}{links.gx_index}">GX results</a>')
    scripts = f'<script src="{root}assets/plotly.min.js"></script>' if charts else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<link rel="icon" href="data:,"><title>{escape(title)}</title>'
        f'<link rel="stylesheet" href="{root}style.css"></head><body data-root="{root}">'
        f'<header class="portal">{"".join(nav)}<div class="search">'
        '<input id="search" type="search" placeholder="search marts, tables, checks"'
        ' aria-label="search"><ul id="search-results"></ul></div></header>'
        f"<main>{body}</main>{scripts}"
        f'<script src="{root}search-index.js"></script><script src="{root}portal.js"></script>'
        "</body></html>"
    )


def table(head: list[str], rows: list[str], **attrs: str) -> str:
    """A table in a horizontally scrolling box (the page itself never scrolls sideways)."""
    extra = "".join(f' {k.rstrip("_")}="{escape(v)}"' for k, v in attrs.items())
    cells = "".join(f"<th>{escape(h)}</th>" for h in head)
    return f'<div class="scroll"><table{extra}><tr>{cells}</tr>{"".join(rows)}</table></div>'


def when(moment: datetime | None) -> str:
    """A UTC timestamp as text."""
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def age(moment: datetime | None) -> str:
    """An age the browser computes (``portal.js``): "3.2 h ago"."""
    if moment is None:
        return '<span class="muted">never</span>'
    return (
        f'<time class="age" datetime="{moment.astimezone(UTC).isoformat()}">{when(moment)}</time>'
    )


def freshness(moment: datetime | None, warn_s: float | None, error_s: float | None) -> str:
    """A freshness badge the browser computes against the thresholds (``portal.js``)."""
    if moment is None:
        return '<span class="fresh" data-state="never">never loaded</span>'
    if warn_s is None:
        return '<span class="muted" data-state="none">no threshold</span>'
    at = moment.astimezone(UTC).isoformat()
    error = f' data-error="{error_s:.0f}"' if error_s is not None else ""
    return f'<span class="fresh" data-fresh-at="{at}" data-warn="{warn_s:.0f}"{error}>-</span>'


def duration(seconds: float | None) -> str:
    """A duration as text."""
    if seconds is None:
        return "-"
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def status(text: str) -> str:
    """A run status, coloured: ``succeeded with warnings`` in amber."""
    css = "warnings" if text.endswith("warnings") else text
    return f'<span class="status-{escape(css)}">{escape(text)}</span>'


def search_index(entries: list[tuple[str, str, str]]) -> str:
    """``search-index.js``: (label, kind, path from root) for the header's search box."""
    data = [{"label": label, "kind": kind, "path": path} for label, kind, path in entries]
    return "window.PORTAL_SEARCH = " + json.dumps(data) + ";\n"
