"""Plotly figures for the portal, drawn in the browser by ``plotly.min.js`` served locally.

A figure is a JSON spec (``data`` + ``layout``) in a ``data-figure`` attribute; ``portal.js``
hands it to ``Plotly.newPlot``. Time axes are real dates (runs are placed where they ran).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from html import escape
from typing import Any

from elt.docs_site.catalog import Asset
from elt.docs_site.history import RunSummary

_LAYOUT = {
    "margin": {"l": 56, "r": 12, "t": 36, "b": 40},
    "xaxis": {"type": "date", "title": {"text": "run started (UTC)"}},
    "legend": {"orientation": "h", "y": -0.25},
    "hovermode": "x unified",
}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def figure(
    data: list[dict[str, Any]], title: str, y_title: str, css_id: str = "", **layout_extra: Any
) -> str:
    """A ``<div class="plot">`` holding one figure."""
    layout = {**_LAYOUT, "title": {"text": title}, "yaxis": {"title": {"text": y_title}}}
    layout.update(layout_extra)
    spec = json.dumps({"data": data, "layout": layout}, default=str)
    ident = f' id="{escape(css_id)}"' if css_id else ""
    return f'<div class="plot"{ident} data-figure="{escape(spec)}"></div>'


def run_charts(runs: list[RunSummary], pipeline: str) -> str:
    """Run duration over time for one pipeline: succeeded and failed runs as two series."""
    chosen = sorted((r for r in runs if r.pipeline == pipeline), key=lambda r: r.started_at)
    series = []
    kinds: list[tuple[str, Callable[[RunSummary], bool], str]] = [
        ("succeeded", lambda r: r.ok and not r.warnings, "#2f7d32"),
        ("succeeded with warnings", lambda r: r.ok and bool(r.warnings), "#d08a00"),
        ("failed", lambda r: not r.ok, "#c62828"),
    ]
    for label, pick, colour in kinds:
        picked = [r for r in chosen if pick(r)]
        if picked:
            series.append(
                {
                    "type": "scatter",
                    "mode": "markers+lines" if label == "succeeded" else "markers",
                    "name": label,
                    "x": [_iso(r.started_at) for r in picked],
                    "y": [round(r.duration_s or 0, 1) for r in picked],
                    "text": [r.run_id for r in picked],
                    "marker": {"color": colour, "size": 9},
                }
            )
    return figure(series, f"{pipeline}: run duration", "seconds", f"duration-{pipeline}")


def volume_chart(asset: Asset) -> str:
    """Rows over time: a mart's published rows, or a raw table's new vs re-merged rows."""
    data: list[dict[str, Any]]
    x = [_iso(v.at) for v in asset.volumes]
    if asset.kind == "mart":
        data = [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "rows published",
                "x": x,
                "y": [v.rows for v in asset.volumes],
            }
        ]
        return figure(data, f"{asset.name}: rows published per run", "rows", "volume")
    new = [v.new_rows if v.new_rows is not None else v.rows for v in asset.volumes]
    merged = [v.rows - n for v, n in zip(asset.volumes, new, strict=True)]
    data = [
        {"type": "bar", "name": "new rows", "x": x, "y": new, "marker": {"color": "#3b6fc4"}},
        {
            "type": "bar",
            "name": "re-merged rows",
            "x": x,
            "y": merged,
            "marker": {"color": "#9fb7e0"},
        },
    ]
    totals = [v.total for v in asset.volumes]
    if any(t is not None for t in totals):
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "rows in table",
                "x": x,
                "y": totals,
                "yaxis": "y2",
                "line": {"color": "#1f2933"},
            }
        )
    # stacked bars, and the table total on its own right-hand axis
    right = {"overlaying": "y", "side": "right", "title": {"text": "rows in table"}}
    return figure(
        data,
        f"{asset.name}: rows loaded per run",
        "rows loaded",
        "volume",
        barmode="stack",
        yaxis2=right,
    )
