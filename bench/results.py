"""Turn a case's raw samples into summaries, ratios and target verdicts; store them as JSON."""

from __future__ import annotations

import json
import os
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

from bench.stats import ratio, summarize

METRICS = ("wall_s", "work_s", "peak_rss_mib", "rows_per_s", "rows_per_s_wall")


def summarize_variant(samples: list[dict[str, Any]]) -> dict[str, dict]:
    """Median/min/max of every metric the samples have."""
    summary = {}
    for metric in METRICS:
        values = [s[metric] for s in samples if s.get(metric) is not None]
        if values:
            summary[metric] = summarize(values).as_dict()
    return summary


def _median(summary: dict, variant: str, metric: str) -> float | None:
    return summary.get(variant, {}).get(metric, {}).get("median")


def ratios_to(summary: dict[str, dict], baseline: str) -> dict[str, dict[str, float | None]]:
    """For each variant, the ratio of its medians to the baseline's medians."""
    out: dict[str, dict[str, float | None]] = {}
    for variant, metrics in summary.items():
        out[variant] = {}
        for metric in metrics:
            base = _median(summary, baseline, metric)
            value = _median(summary, variant, metric)
            out[variant][metric] = None if base is None or value is None else ratio(value, base)
    return out


def evaluate_targets(summary: dict[str, dict], targets: list[dict]) -> list[dict]:
    """Each target with the measured ratio and whether it was met."""
    verdicts = []
    for target in targets:
        value = _median(summary, target["variant"], target["on"])
        base = _median(summary, target["against"], target["on"])
        measured = None if value is None or base is None else ratio(value, base)
        if measured is None:
            met = None
        elif target["op"] == ">=":
            met = measured >= target["bound"]
        else:
            met = measured <= target["bound"]
        verdicts.append({**target, "ratio": measured, "met": met})
    return verdicts


def finish_case(record: dict[str, Any]) -> dict[str, Any]:
    """Add ``summary``, ``ratios`` and ``verdicts`` to a case record (from its samples)."""
    summary = {
        variant: summarize_variant(samples)
        for variant, samples in record["samples"].items()
        if samples
    }
    record["summary"] = summary
    record["ratios"] = (
        ratios_to(summary, record["baseline"]) if record["baseline"] in summary else {}
    )
    record["verdicts"] = evaluate_targets(summary, record.get("targets", []))
    return record


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step (a temporary file renamed over it), so a
    reader or another writer never meets a half-written or interleaved file."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def results_file(folder: Path, day: date | None = None) -> Path:
    """``<folder>/<YYYY-MM-DD>.json``."""
    return folder / f"{(day or date.today()).isoformat()}.json"


def load_suite(folder: Path, suite: str, day: date | None = None) -> dict[str, Any] | None:
    """The day's saved result of ``suite``, if there is one."""
    path = results_file(folder, day)
    try:
        return json.loads(path.read_text()).get("suites", {}).get(suite)
    except (OSError, ValueError):
        return None


def merge_rerun(previous: dict[str, Any], rerun: dict[str, Any]) -> dict[str, Any]:
    """``previous`` with the cases of ``rerun`` (a run of some of its cases) in place of the
    cases with the same id (new ones at the end); the re-run is listed under ``reruns``."""
    fresh = {case["id"]: case for case in rerun["cases"]}
    cases = [fresh.pop(case["id"], case) for case in previous["cases"]]
    cases += list(fresh.values())
    record = {
        "cases": [case["id"] for case in rerun["cases"]],
        "started_at": rerun["started_at"],
        "duration_s": rerun.get("duration_s"),
        "repeats": rerun.get("repeats"),
        "load_average_start": rerun.get("machine", {}).get("load_average"),
        "load_average_end": rerun.get("load_average_end"),
    }
    finished = previous.get("finished", True) and rerun.get("finished", True)
    reruns = [*previous.get("reruns", []), record]
    return {**previous, "cases": cases, "reruns": reruns, "finished": finished}


def save(folder: Path, suite_result: dict[str, Any], day: date | None = None) -> Path:
    """Merge one suite's result into the day's JSON file (other suites of the day are kept)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = results_file(folder, day)
    document: dict[str, Any] = {"suites": {}}
    if path.exists():
        try:
            document = json.loads(path.read_text())
        except ValueError:
            document = {"suites": {}}
    document.setdefault("suites", {})[suite_result["suite"]] = suite_result
    write_atomically(path, json.dumps(document, indent=2, default=str) + "\n")
    return path
