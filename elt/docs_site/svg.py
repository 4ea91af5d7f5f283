"""Small inline-SVG charts (no JavaScript, no external assets): bars over time, one series."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 540, 220
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 12, 32, 30


@dataclass(frozen=True)
class Point:
    """One bar: its label (shown on hover and under the axis), value and status colour."""

    label: str
    value: float
    ok: bool = True


def _nice_max(value: float) -> float:
    """The smallest 1/2/5 × 10^n at or above ``value`` (a round top for the axis)."""
    if value <= 0:
        return 1.0
    scale = 1.0
    while scale * 10 <= value:
        scale *= 10
    while scale > value:
        scale /= 10
    for step in (1, 2, 5, 10):
        if step * scale >= value:
            return step * scale
    return 10 * scale


def format_number(value: float) -> str:
    """A compact axis label: 1.2k, 3M, 0.5."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.3g}"


def bar_chart(points: list[Point], *, title: str, unit: str = "") -> str:
    """An SVG bar chart of ``points`` in order (oldest first), with a y axis and a trend line.

    Failed points are drawn in red; an empty series gives a chart that says so.
    """
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img"'
        f' viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}">',
        f"<title>{escape(title)}</title>",
        f'<text class="caption" x="{_LEFT}" y="18">{escape(title)}</text>',
    ]
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM
    if not points:
        parts.append(
            f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">no runs yet</text>'
        )
        return "".join(parts) + "</svg>"
    top = _nice_max(max(p.value for p in points))
    parts += _axis(top, plot_w, plot_h, unit)
    slot = plot_w / len(points)
    bar_w = max(1.0, min(40.0, slot * 0.7))
    centres = []
    for i, point in enumerate(points):
        height = plot_h * point.value / top
        x = _LEFT + i * slot + (slot - bar_w) / 2
        y = _TOP + plot_h - height
        centres.append((x + bar_w / 2, y))
        css = "bar" if point.ok else "bar failed"
        label = f"{point.label}: {format_number(point.value)}{unit}"
        parts.append(
            f'<rect class="{css}" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}"'
            f' height="{height:.1f}"><title>{escape(label)}</title></rect>'
        )
    path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(centres))
    parts.append(f'<path class="trend" d="{path}" fill="none"/>')
    parts.append(
        f'<text class="tick" x="{_LEFT}" y="{HEIGHT - 8}">{escape(points[0].label)}</text>'
        f'<text class="tick" x="{WIDTH - _RIGHT}" y="{HEIGHT - 8}" text-anchor="end">'
        f"{escape(points[-1].label)}</text>"
    )
    return "".join(parts) + "</svg>"


def _axis(top: float, plot_w: float, plot_h: float, unit: str) -> list[str]:
    """Horizontal grid lines with their values at 0, ½ and the top."""
    parts = []
    for fraction in (0.0, 0.5, 1.0):
        y = _TOP + plot_h * (1 - fraction)
        parts.append(
            f'<line class="grid" x1="{_LEFT}" x2="{_LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{format_number(top * fraction)}{escape(unit)}</text>"
        )
    return parts
