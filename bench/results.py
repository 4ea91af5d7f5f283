"""Turn a case's raw samples into summaries, ratios and target verdicts; store them as JSON."""

from __future__ import annotations

import json
import os
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

from bench.stats import ratio, summarize

METRICS = (
    "wall_s",
    "work_s",
    "peak_rss_mib",
    "rows_per_s",
    "rows_per_s_wall",
    # what a variant reports about an `elt run` it did (the publish case): its process's
    # high-water mark and the share of the run its publish step took
    "run_peak_rss_mib",
    "run_publish_share",
)
UNITS = {
    "work_s": "s",
    "wall_s": "s",
    "peak_rss_mib": "MiB",
    "run_peak_rss_mib": "MiB",
    "run_publish_share": "%",
}


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
        if target["against"] is None:  # a bound on the value itself
            measured, unit = value, UNITS.get(target["on"], "")
        else:
            base = _median(summary, target["against"], target["on"])
            measured = None if value is None or base is None else ratio(value, base)
            unit = "×"
        verdicts.append(verdict(target["text"], measured, target["op"], target["bound"], unit))
    return verdicts


def verdict(text: str, measured: float | None, op: str, bound: float, unit: str = "×") -> dict:
    """One target's verdict: ``met`` is None when nothing was measured. ``unit`` "×" is a
    ratio; "%" a share (0–1); else the unit of an absolute value."""
    met = None
    if measured is not None:
        met = measured >= bound if op == ">=" else measured <= bound
    return {"text": text, "ratio": measured, "op": op, "bound": bound, "unit": unit, "met": met}


TARGETS_FILE_ENV = "BENCH_TARGETS_FILE"
"""Where a bench script run by the harness writes its targets' verdicts (JSON list)."""


def write_verdicts(verdicts: list[dict]) -> Path | None:
    """Hand a bench script's verdicts to the harness that runs it (nothing when run alone)."""
    target = os.environ.get(TARGETS_FILE_ENV)
    if not target:
        return None
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, json.dumps(verdicts, indent=2) + "\n")
    return path


def read_verdicts(path: Path) -> list[dict]:
    """The verdicts a bench script wrote to ``path`` (none if it wrote nothing)."""
    try:
        return list(json.loads(path.read_text()))
    except (OSError, ValueError):
        return []


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


SUITE_MINUTES_TARGET = 8.0
"""Issue 21: the whole test suite within 8 minutes on a quiet 2-core machine."""


def suite_run_verdict(path: Path) -> dict | None:
    """The target on `make test`'s duration, from the last whole-suite run's record (None
    when there is none): its date, load and pass count are part of the text, since the
    target is for a quiet machine."""
    try:
        run = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    minutes = run["duration_s"] / 60
    text = (
        f"`make test` ≤ {SUITE_MINUTES_TARGET:g} min on a quiet 2-core machine (last whole"
        f" run here: {run['finished_at']}, {run['passed']} passed, {run['failed']} failed,"
        f" {run['workers']} workers, load {run['load_average_start']:.1f} →"
        f" {run['load_average_end']:.1f} on {run['cpus']} CPUs)"
    )
    return verdict(text, minutes, "<=", SUITE_MINUTES_TARGET, "min")
