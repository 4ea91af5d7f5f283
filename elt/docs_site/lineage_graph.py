"""The portal's lineage graph, drawn from the OpenLineage events the runs emitted.

Datasets are nodes in five layers (source → raw → audit → published → export); a job that
read A and wrote B draws an edge A → B. Each node is coloured by the latest status of the
asset it stands for (open failing check red, open warning amber, else green).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from typing import Any

from elt.docs_site.catalog import Catalog
from elt.docs_site.charts import figure

LAYERS = ("source", "raw", "audit", "published", "export")
_COLOURS = {"fail": "#c62828", "warn": "#d08a00", "ok": "#2f7d32", "unknown": "#8a94a0"}


@dataclass
class Graph:
    """Dataset nodes (id → layer, label) and edges (from id, to id, job)."""

    nodes: dict[str, tuple[str, str]] = field(default_factory=dict)
    edges: set[tuple[str, str, str]] = field(default_factory=set)


def _layer(namespace: str, name: str, published: str) -> tuple[str, str]:
    """(layer, short label) of a dataset."""
    if not namespace.startswith("postgres://"):
        scheme, _, rest = namespace.partition("://")
        if namespace == "file":
            return "export", name
        if scheme in ("s3", "gs", "az", "abfss"):
            return "export", f"{namespace}/{name}"
        return "source", f"{rest} ({scheme})/{name}"
    schema, _, table = name.split(".", 1)[-1].partition(".")
    if schema.startswith("raw_"):
        return "raw", f"{schema}.{table}"
    if schema == published:
        return "published", table
    return "audit", f"{schema}.{table}"


def from_events(events: list[dict[str, Any]], published: str) -> Graph:
    """The graph of the datasets and jobs in ``events`` (COMPLETE/FAIL events carry io)."""
    graph = Graph()

    def node(dataset: dict[str, Any]) -> str:
        key = f"{dataset['namespace']}/{dataset['name']}"
        graph.nodes.setdefault(key, _layer(dataset["namespace"], dataset["name"], published))
        return key

    for event in events:
        inputs = [node(d) for d in event.get("inputs") or []]
        outputs = [node(d) for d in event.get("outputs") or []]
        job = event["job"]["name"]
        if len(inputs) > 1 and len(outputs) > 1:  # publish, export: table i → table i
            graph.edges |= {(i, o, job) for i, o in zip(inputs, outputs, strict=False)}
            continue
        graph.edges |= {(i, o, job) for i in inputs for o in outputs}
    return graph


def _status(label: str, layer: str, catalog: Catalog) -> str:
    by_name = {asset.name: asset for asset in catalog.assets}
    name = label if layer == "raw" else label.rsplit(".", 1)[-1].rsplit("/", 1)[-1]
    asset = by_name.get(name)
    if asset is None:
        return "unknown"
    severities = {check.latest.severity for check in asset.open_checks}
    return "fail" if "fail" in severities else "warn" if severities else "ok"


def draw(graph: Graph, catalog: Catalog) -> str:
    """The graph as a plotly figure: layers left to right, edges as lines."""
    position: dict[str, tuple[int, int]] = {}
    for layer_index, layer in enumerate(LAYERS):
        keys = sorted(k for k, (lay, _) in graph.nodes.items() if lay == layer)
        for row, key in enumerate(keys):
            position[key] = (layer_index, -row)
    xs, ys = [], []
    for src, out, _ in sorted(graph.edges):
        xs += [position[src][0], position[out][0], None]
        ys += [position[src][1], position[out][1], None]
    data = [
        {
            "type": "scatter",
            "mode": "lines",
            "x": xs,
            "y": ys,
            "name": "read → wrote",
            "line": {"color": "#b8c2cc", "width": 1},
            "hoverinfo": "skip",
        }
    ]
    for state, colour in _COLOURS.items():
        keys = [
            k for k in position if _status(graph.nodes[k][1], graph.nodes[k][0], catalog) == state
        ]
        if keys:
            data.append(
                {
                    "type": "scatter",
                    "mode": "markers+text",
                    "name": state,
                    "x": [position[k][0] for k in keys],
                    "y": [position[k][1] for k in keys],
                    "text": [graph.nodes[k][1] for k in keys],
                    "textposition": "top center",
                    "marker": {"color": colour, "size": 12},
                }
            )
    rows = max((-y for _, y in position.values()), default=0) + 1
    html = figure(
        data,
        "lineage from the OpenLineage events of the latest run",
        "",
        "lineage-graph",
        xaxis={
            "tickvals": list(range(len(LAYERS))),
            "ticktext": list(LAYERS),
            "range": [-0.5, 4.5],
        },
        yaxis={"visible": False},
        height=max(320, 34 * rows),
    )
    return html.replace('class="plot"', f'class="plot" style="height:{max(320, 34 * rows)}px"', 1)


def edge_rows(graph: Graph) -> list[str]:
    """The edges as table rows (for reading and for tests)."""
    return [
        f'<tr data-from="{escape(graph.nodes[src][1])}" data-to="{escape(graph.nodes[out][1])}">'
        f"<td>{escape(graph.nodes[src][1])}</td><td>{escape(graph.nodes[out][1])}</td>"
        f"<td>{escape(job)}</td></tr>"
        for src, out, job in sorted(graph.edges, key=lambda e: (graph.nodes[e[0]][0], e))
    ]
