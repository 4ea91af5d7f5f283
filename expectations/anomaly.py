"""Volume and freshness anomaly rules: a load compared with the table's own history.

    - {type: volume_anomaly, table: raw_shop.orders}        rows of this load vs earlier loads
    - {type: freshness_anomaly, table: raw_shop.orders}     time since the previous load vs
                                                            earlier intervals between loads

History comes from ``elt_meta.loads`` (the newest ``window`` loads before this one). The
score is a robust z-score (``method: mad``, median and scaled median absolute deviation, the
default) or a plain z-score (``method: zscore``); ``|score| > threshold`` fails the check.
With fewer than ``min_history`` earlier loads the check passes and says so. The checks are
recorded in ``elt_meta.checks`` like every other rule, and warn (default) or fail the gate.
GX has no expectation that compares a batch with earlier batches, so this is plain SQL.
"""

from __future__ import annotations

import itertools
import math
import statistics
from datetime import datetime

from elt import runs
from elt.config import Pipeline, Rule
from elt.runs import CheckRecord

ANOMALY_TYPES = ("volume_anomaly", "freshness_anomaly")
_MAD_SCALE = 1.4826  # makes the MAD comparable with a standard deviation for normal data


def score(history: list[float], value: float, method: str = "mad") -> float:
    """How many (robust) standard deviations ``value`` lies from ``history``'s centre.

    The spread never counts as less than 1 % of the centre (or 1), so a perfectly steady
    history does not turn a one-row difference into an anomaly.
    """
    if method == "zscore":
        centre, spread = statistics.fmean(history), statistics.pstdev(history)
    else:
        centre = statistics.median(history)
        spread = _MAD_SCALE * statistics.median(abs(x - centre) for x in history)
    spread = max(spread, 0.01 * abs(centre), 1.0)
    return (value - centre) / spread


def _history(cur, rule: Rule, load_id: str | None) -> list[tuple[str, float, datetime]]:
    """(load id, rows, loaded at) of the table's loads, oldest first, ending at ``load_id``."""
    schema, table = str(rule.table).split(".", 1)
    cur.execute(
        f"select load_id, sum(rows), max(loaded_at) from {runs.SCHEMA}.loads"
        " where source = %s and table_name = %s and status = 'succeeded'"
        f" and loaded_at <= coalesce((select max(loaded_at) from {runs.SCHEMA}.loads"
        "  where load_id = %s), now())"
        " group by load_id order by max(loaded_at) desc limit %s",
        (schema.removeprefix("raw_"), table, load_id, rule.window + 2),
    )
    return [(row[0], float(row[1]), row[2]) for row in reversed(cur.fetchall())]


def _values(rule: Rule, loads: list[tuple[str, float, datetime]]) -> list[float]:
    """The measured series, oldest first: rows per load, or seconds between loads."""
    if rule.type == "volume_anomaly":
        return [rows for _, rows, _ in loads]
    times = [at for _, _, at in loads]
    return [(b - a).total_seconds() for a, b in itertools.pairwise(times)]


def evaluate(rule: Rule, series: list[float]) -> tuple[bool, object, dict]:
    """(success, observed value, details) for the newest value of ``series`` vs the rest."""
    if not series:
        return True, None, {"expected_text": "no load yet"}
    value, past = series[-1], series[:-1][-rule.window :]
    unit = "rows" if rule.type == "volume_anomaly" else "s between loads"
    if len(past) < rule.min_history:
        text = f"needs {rule.min_history} earlier loads to judge (has {len(past)})"
        return True, value, {"expected_text": text, "history": len(past)}
    found = score(past, value, rule.method)
    centre = statistics.median(past) if rule.method == "mad" else statistics.fmean(past)
    details = {
        "expected_text": f"|{rule.method} score| ≤ {rule.threshold:g} around {centre:,.0f} {unit}",
        "score": round(found, 2) if math.isfinite(found) else str(found),
        "centre": centre,
        "history": len(past),
    }
    return abs(found) <= rule.threshold, value, details


def run_anomaly_checks(
    pipe: Pipeline, *, url: str, load_id: str | None, schemas: set[str] | None
) -> list[CheckRecord]:
    """The pipeline's anomaly rules on the raw tables of ``schemas`` (None: all of them)."""
    rules = [
        r
        for r in pipe.quality.rules
        if r.type in ANOMALY_TYPES and (schemas is None or str(r.table).split(".")[0] in schemas)
    ]
    if not rules:
        return []
    checks = []
    with runs.connect(url) as conn, conn.cursor() as cur:
        for rule in rules:
            success, observed, details = evaluate(rule, _values(rule, _history(cur, rule, load_id)))
            checks.append(
                CheckRecord(
                    stage="raw",
                    suite=f"{pipe.name}.anomaly",
                    expectation_type=rule.type,
                    expectation_name=str(rule.name),
                    table_name=str(rule.table),
                    column_name=None,
                    severity=rule.severity or "warn",
                    success=success,
                    observed_value=observed,
                    details=details,
                    load_id=load_id,
                )
            )
    return checks
