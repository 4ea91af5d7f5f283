"""Markdown tables of a suite's results, written into BENCHMARKS.md between markers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.machine import one_line
from bench.stats import (
    Summary,
    fmt_number,
    fmt_ratio,
    fmt_spread,
    markdown_table,
    replace_block,
)

HEADINGS = {
    "ingest_db": "Database → warehouse",
    "ingest_files": "Files → warehouse",
    "ingest_api": "REST API → warehouse",
    "incremental": "Incremental vs full refresh",
    "e2e": "End to end (`elt run`)",
    "external": "Other bench scripts",
}


def results_dir() -> Path:
    """``bench/results``."""
    return Path(__file__).resolve().parent / "results"


def benchmarks_file() -> Path:
    """``BENCHMARKS.md`` at the project root."""
    return Path(__file__).resolve().parent.parent / "BENCHMARKS.md"


def _spread(summary: dict, metric: str, digits: int = 2) -> str:
    values = summary.get(metric)
    return fmt_spread(Summary(**values), digits) if values else "–"


def _ratio(record: dict, variant: str, metric: str) -> str:
    if variant == record["baseline"]:
        return "1.00× (baseline)"
    return fmt_ratio(record.get("ratios", {}).get(variant, {}).get(metric))


def throughput_table(record: dict) -> str:
    """rows/s during the load (after imports), its ratio, wall time and peak RSS."""
    rows = []
    for variant, label in record["labels"].items():
        summary = record["summary"].get(variant)
        if not summary:
            continue
        rows.append(
            [
                label,
                _spread(summary, "rows_per_s"),
                _ratio(record, variant, "rows_per_s"),
                _spread(summary, "rows_per_s_wall"),
                _ratio(record, variant, "rows_per_s_wall"),
                _spread(summary, "wall_s"),
                _spread(summary, "peak_rss_mib"),
            ]
        )
    headers = [
        "variant",
        "rows/s, load",
        "× baseline",
        "rows/s, whole process",
        "× baseline",
        "wall s",
        "peak RSS MiB",
    ]
    return markdown_table(headers, rows)


def time_table(record: dict) -> str:
    """Time of the job (after imports), wall time of the process, ratios and peak RSS."""
    rows = []
    for variant, label in record["labels"].items():
        summary = record["summary"].get(variant)
        if not summary:
            continue
        rows.append(
            [
                label,
                _spread(summary, "work_s"),
                _ratio(record, variant, "work_s"),
                _spread(summary, "wall_s"),
                _ratio(record, variant, "wall_s"),
                _spread(summary, "peak_rss_mib"),
                _ratio(record, variant, "peak_rss_mib"),
            ]
        )
    headers = ["variant", "job s", "× baseline", "wall s", "× baseline", "peak RSS MiB", "×"]
    return markdown_table(headers, rows)


def verdict_lines(record: dict) -> list[str]:
    """One line per target: measured ratio and met / MISSED."""
    lines = []
    for verdict in record.get("verdicts", []):
        if verdict["met"] is None:
            state = "not measured"
        else:
            state = "met" if verdict["met"] else "**MISSED** (see the findings below)"
        measured = fmt_ratio(verdict["ratio"])
        lines.append(f"- Target {verdict['text']}: measured {measured} — {state}.")
    return lines


def case_section(record: dict) -> str:
    """The Markdown of one case: title, table, targets, notes, error."""
    parts = [f"##### {record.get('title', record['id'])}"]
    if record.get("size"):
        parts.append(f"Size: {record['size']}.")
    if record.get("summary"):
        table = throughput_table(record) if record["metric"] == "throughput" else time_table(record)
        parts.append(table)
    lines = verdict_lines(record) + [f"- {note}" for note in record.get("notes", [])]
    if lines:
        parts.append("\n".join(lines))
    if record.get("error"):
        parts.append(f"This case **failed**:\n\n```text\n{record['error'].strip()[-1500:]}\n```")
    return "\n\n".join(parts)


def external_section(record: dict) -> str:
    """An external script: its command, wall time, peak RSS and what it printed."""
    parts = [f"##### {record['title']}", f"Command: `{record['command']}`."]
    if record.get("skipped"):
        parts.append(f"Skipped: {record['skipped']}.")
    elif record.get("error"):
        parts.append(f"Failed:\n\n```text\n{record['error'].strip()[-1500:]}\n```")
    else:
        parts.append(
            f"Whole script: {fmt_number(record['wall_s'])} s wall, "
            f"{fmt_number(record['peak_rss_mib'])} MiB peak RSS (process tree). It printed:"
        )
        parts.append(f"```text\n{record['stdout'].strip()}\n```")
    return "\n\n".join(parts)


def scale_lines(cases: list[dict]) -> list[str]:
    """For a group measured at several sizes: how time and peak RSS of ``ours`` grew."""
    measured = [c for c in cases if c.get("summary", {}).get("ours")]
    if len(measured) < 2:
        return []
    small, big = measured[0], measured[-1]
    s, b = small["summary"]["ours"], big["summary"]["ours"]
    rss = b["peak_rss_mib"]["median"] / s["peak_rss_mib"]["median"]
    work = b["work_s"]["median"] / s["work_s"]["median"]
    return [
        f"- Ours from {small['size']} to {big['size']}: load time ×{work:.2f}, "
        f"peak RSS {s['peak_rss_mib']['median']:.0f} → {b['peak_rss_mib']['median']:.0f} MiB "
        f"(×{rss:.2f}; target: independent of table size)."
    ]


def e2e_lines(cases: list[dict]) -> list[str]:
    """For the end-to-end case: how time and memory grew with the rows loaded."""
    lines = []
    for case in cases:
        summary = case.get("summary", {})
        points = []
        for variant, label in case.get("labels", {}).items():
            samples = case["samples"].get(variant) or []
            if variant in summary and samples:
                rows = samples[0].get("rows") or 0
                points.append((label, rows, summary[variant]))
        if len(points) < 2:
            continue
        first_label, first_rows, first = points[0]
        for label, rows, values in points[1:]:
            work = values["work_s"]["median"] / first["work_s"]["median"]
            rss = values["peak_rss_mib"]["median"] / first["peak_rss_mib"]["median"]
            lines.append(
                f"- {label} vs {first_label}: {rows / max(first_rows, 1):.1f}× the rows loaded,"
                f" job time ×{work:.2f}, peak RSS ×{rss:.2f}."
            )
    return lines


def render_suite(result: dict[str, Any]) -> str:
    """The whole block of one suite run."""
    minutes = result.get("duration_s", 0) / 60
    load_end = result.get("load_average_end") or [0, 0, 0]
    head = [
        f"### `{result['command']}` — {result['started_at']}",
        f"Command: `{result['command']}` (`.venv/bin/python -m bench {result['suite']}`); "
        f"{result['repeats']} rounds per case, variants interleaved, each run in a fresh process; "
        f"took {minutes:.1f} min. Load average at the end: {load_end[0]:.1f}.",
        f"Machine: {one_line(result['machine'])}.",
        "Cells: median (min–max). *load* = the job itself after imports; *whole process* / "
        "*wall* = the process from start to exit (interpreter start and imports included). "
        "Peak RSS: the variant's process tree, sampled every 20 ms.",
    ]
    sections = []
    groups: dict[str, list[dict]] = {}
    for case in result["cases"]:
        groups.setdefault(case.get("group", case["id"]), []).append(case)
    for group, cases in groups.items():
        sections.append(f"#### {HEADINGS.get(group, group)}")
        for case in cases:
            render = external_section if group == "external" else case_section
            sections.append(render(case))
        extra = scale_lines(cases) if group == "ingest_db" else []
        extra += e2e_lines(cases) if group == "e2e" else []
        if extra:
            sections.append("\n".join(extra))
    return "\n\n".join(head + sections)


def update_benchmarks(result: dict[str, Any], path: Path | None = None) -> Path:
    """Replace the suite's block in BENCHMARKS.md (text outside the markers is kept)."""
    path = path or benchmarks_file()
    document = path.read_text() if path.exists() else "# Benchmarks\n"
    path.write_text(replace_block(document, result["suite"], render_suite(result)))
    return path
