"""Statistics of repeated samples and the Markdown they become (no I/O, no services)."""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Summary:
    """Median, minimum and maximum of repeated measurements of one number."""

    median: float
    min: float
    max: float
    n: int

    def as_dict(self) -> dict[str, float]:
        """A JSON-ready view."""
        return {"median": self.median, "min": self.min, "max": self.max, "n": self.n}


def summarize(values: Sequence[float]) -> Summary:
    """The summary of ``values`` (at least one)."""
    if not values:
        raise ValueError("no samples to summarize")
    return Summary(
        median=float(statistics.median(values)),
        min=float(min(values)),
        max=float(max(values)),
        n=len(values),
    )


def ratio(value: float, baseline: float) -> float | None:
    """``value / baseline``; None when the baseline is zero (no meaningful ratio)."""
    return None if baseline == 0 else value / baseline


def fmt_number(value: float | None, digits: int = 2) -> str:
    """A compact number: thousands separated, ``digits`` significant decimals below 100."""
    if value is None:
        return "–"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.{digits}f}"


def fmt_spread(summary: Summary, digits: int = 2) -> str:
    """``median (min–max)``."""
    return (
        f"{fmt_number(summary.median, digits)} "
        f"({fmt_number(summary.min, digits)}–{fmt_number(summary.max, digits)})"
    )


def fmt_ratio(value: float | None) -> str:
    """A ratio as ``0.53×``."""
    return "–" if value is None else f"{value:.2f}×"


def fmt_measured(value: float | None, unit: str = "×") -> str:
    """A target's measured value: a ratio (``1.23×``), a share (``4.8 %``) or a number with
    its unit (``2.9 s``)."""
    if value is None:
        return "–"
    if unit == "×":
        return fmt_ratio(value)
    if unit == "%":
        return f"{value * 100:.1f} %"
    return f"{fmt_number(value)} {unit}".strip()


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub Markdown table; ``|`` inside cells is escaped."""

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"

    out = [line(headers), "|" + "|".join("---" for _ in headers) + "|"]
    out += [line(row) for row in rows]
    return "\n".join(out)


def marker_lines(name: str) -> tuple[str, str]:
    """The begin and end markers of the generated block ``name``."""
    return f"<!-- bench:{name}:begin -->", f"<!-- bench:{name}:end -->"


def replace_block(document: str, name: str, content: str) -> str:
    """``document`` with the block between the markers of ``name`` replaced by ``content``.

    Text outside the markers is kept as it is; a document without the block gets it
    appended at the end.
    """
    begin, end = marker_lines(name)
    block = f"{begin}\n{content.strip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(document):
        return pattern.sub(lambda _match: block, document, count=1)
    separator = "" if document.endswith("\n") or not document else "\n"
    return f"{document}{separator}\n{block}\n"
