"""Markdown tables of a suite's results, written into BENCHMARKS.md between markers."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

from bench.machine import one_line
from bench.results import suite_run_verdict, write_atomically
from bench.stats import (
    Summary,
    fmt_measured,
    fmt_number,
    fmt_ratio,
    fmt_spread,
    markdown_table,
    replace_block,
)
from elt import paths

HEADINGS = {
    "ingest_db": "Database → warehouse",
    "ingest_files": "Files → warehouse",
    "ingest_api": "REST API → warehouse",
    "ingest_shop": "Shop source (five small tables): per-run fixed cost",
    "incremental": "Incremental vs full refresh",
    "e2e": "End to end (`elt run`)",
    "publish": "Publish (write-audit-publish)",
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


# a column of a case's table: its header and the summary cell (a metric) or ratio cell
Column = tuple[str, str, str]  # (header, "spread" | "ratio", metric)

THROUGHPUT_COLUMNS: tuple[Column, ...] = (
    ("rows/s, load", "spread", "rows_per_s"),
    ("× baseline", "ratio", "rows_per_s"),
    ("rows/s, whole process", "spread", "rows_per_s_wall"),
    ("× baseline", "ratio", "rows_per_s_wall"),
    ("wall s", "spread", "wall_s"),
    ("peak RSS MiB", "spread", "peak_rss_mib"),
)
TIME_COLUMNS: tuple[Column, ...] = (
    ("job s", "spread", "work_s"),
    ("× baseline", "ratio", "work_s"),
    ("wall s", "spread", "wall_s"),
    ("× baseline", "ratio", "wall_s"),
    ("peak RSS MiB", "spread", "peak_rss_mib"),
    ("×", "ratio", "peak_rss_mib"),
)


def variant_table(record: dict, columns: tuple[Column, ...]) -> str:
    """One row per measured variant: its label, then ``columns`` (spreads and ratios)."""
    rows = []
    for variant, label in record["labels"].items():
        summary = record["summary"].get(variant)
        if not summary:
            continue
        cells = [
            _spread(summary, metric) if kind == "spread" else _ratio(record, variant, metric)
            for _header, kind, metric in columns
        ]
        rows.append([label, *cells])
    return markdown_table(["variant", *(header for header, _kind, _metric in columns)], rows)


def _state(verdict: dict) -> str:
    if verdict["met"] is None:
        return "not measured"
    return "met" if verdict["met"] else "**MISSED** (see the findings below)"


def _measured(verdict: dict) -> str:
    return fmt_measured(verdict["ratio"], verdict.get("unit", "×"))


def verdict_lines(record: dict) -> list[str]:
    """One line per target: measured value and met / MISSED."""
    return [
        f"- Target {verdict['text']}: measured {_measured(verdict)} — {_state(verdict)}."
        for verdict in record.get("verdicts", [])
    ]


def targets_section(result: dict[str, Any], suite_record: Path) -> str:
    """Every target of the run in one table (cases and bench scripts alike), in run order,
    then the test suite's from ``suite_record`` (the last whole `make test`), and how many
    were met; empty when there is none."""
    rows = []
    for case in result["cases"]:
        for verdict in case.get("verdicts", []):
            rows.append(
                [
                    case.get("title", case["id"]),
                    verdict["text"],
                    _measured(verdict),
                    _state(verdict),
                ]
            )
    suite_run = suite_run_verdict(suite_record)
    if suite_run:
        rows.append(["the test suite", suite_run["text"], _measured(suite_run), _state(suite_run)])
    if not rows:
        return ""
    met = sum(1 for row in rows if row[3] == "met")
    table = markdown_table(["case", "target", "measured", "verdict"], rows)
    return f"#### Targets\n\n{met} of {len(rows)} targets met in this run.\n\n{table}"


def case_section(record: dict) -> str:
    """The Markdown of one case: title, table, targets, notes, error."""
    parts = [f"##### {record.get('title', record['id'])}"]
    if record.get("size"):
        parts.append(f"Size: {record['size']}.")
    if record.get("summary"):
        throughput = record["metric"] == "throughput"
        parts.append(variant_table(record, THROUGHPUT_COLUMNS if throughput else TIME_COLUMNS))
    lines = verdict_lines(record) + [f"- {note}" for note in record.get("notes", [])]
    if lines:
        parts.append("\n".join(lines))
    if record.get("error"):
        parts.append(f"This case **failed**:\n\n```text\n{record['error'].strip()[-1500:]}\n```")
    return "\n\n".join(parts)


def external_section(record: dict) -> str:
    """An external script: its command, wall time, peak RSS and what it printed."""
    parts = [f"##### {record['title']}", f"Command: `{record['command']}`."]
    if record.get("verdicts"):
        parts.append("\n".join(verdict_lines(record)))
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


def _scale_points(case: dict) -> list[tuple[str, int, dict]]:
    """(label, rows loaded, summary) of each measured variant of a scale case, in order."""
    points = []
    summary = case.get("summary", {})
    for variant, label in case.get("labels", {}).items():
        samples = case["samples"].get(variant) or []
        if variant in summary and samples:
            points.append((label, samples[0].get("rows") or 0, summary[variant]))
    return points


def e2e_lines(cases: list[dict]) -> list[str]:
    """For the end-to-end case, each step of the scale curve (1× → 10×, 10× → 100×): how
    the rows loaded, the job time and the peak RSS grew (time linear, memory flat)."""
    lines = []
    for case in cases:
        points = _scale_points(case)
        for (small, small_rows, s), (big, big_rows, b) in pairwise(points):
            work_s = (s["work_s"]["median"], b["work_s"]["median"])
            rss = (s["peak_rss_mib"]["median"], b["peak_rss_mib"]["median"])
            lines.append(
                f"- {small} → {big}: rows loaded ×{big_rows / max(small_rows, 1):.1f}"
                f" ({small_rows:,} → {big_rows:,}), job time ×{work_s[1] / work_s[0]:.2f}"
                f" ({fmt_number(work_s[0])} → {fmt_number(work_s[1])} s),"
                f" peak RSS ×{rss[1] / rss[0]:.2f} ({rss[0]:.0f} → {rss[1]:.0f} MiB)."
            )
    return lines


def _partial_line(result: dict[str, Any]) -> list[str]:
    if result.get("finished", True):
        return []
    return [
        "**Partial run**: these are the cases finished when this block was written; the run"
        " was still going or was stopped."
    ]


def _rerun_lines(result: dict[str, Any]) -> list[str]:
    lines = []
    for rerun in result.get("reruns", []):
        start = (rerun.get("load_average_start") or [0])[0]
        end = (rerun.get("load_average_end") or [0])[0]
        lines.append(
            f"Re-run of {', '.join(rerun['cases'])} (`--cases`) at {rerun['started_at']}:"
            f" {rerun.get('repeats')} rounds, {(rerun.get('duration_s') or 0) / 60:.1f} min,"
            f" load average {start:.1f} → {end:.1f}; those cases' figures come from it."
        )
    return lines


def render_suite(result: dict[str, Any], suite_record: Path | None = None) -> str:
    """The whole block of one suite run (``suite_record``: the last `make test` record,
    by default the project's)."""
    minutes = result.get("duration_s", 0) / 60
    load_end = result.get("load_average_end") or [0, 0, 0]
    head = [
        f"### `{result['command']}` — {result['started_at']}",
        f"Command: `{result['command']}` (`.venv/bin/python -m bench {result['suite']}`); "
        f"{result['repeats']} rounds per case, variants interleaved, each run in a fresh process; "
        f"took {minutes:.1f} min. Load average at the end: {load_end[0]:.1f}.",
        f"Machine: {one_line(result['machine'])}.",
        *_partial_line(result),
        *_rerun_lines(result),
        "Cells: median (min–max). *load* = the job itself after imports; *whole process* / "
        "*wall* = the process from start to exit (interpreter start and imports included). "
        "Peak RSS: the variant's process tree, sampled every 20 ms.",
    ]
    targets = targets_section(result, suite_record or paths.suite_record_file())
    sections = [targets] if targets else []
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
    write_atomically(path, replace_block(document, result["suite"], render_suite(result)))
    return path
