"""Turn GX validation results into check rows for ``elt_meta.checks`` and the console.

The observed value of a check is what a reader wants to see next to "failed": the row count
for a row-count rule, the number of unexpected rows (nulls, values out of range or not
accepted, duplicates) for column rules, the query's value for a ``sql`` rule with
``expected``. ``details`` keeps a sample of the unexpected values and any error.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from decimal import Decimal
from typing import Any

from elt.redact import redact
from elt.runs import CheckRecord
from expectations import samples
from expectations.plan import SuitePlan

CheckResult = CheckRecord
_DETAIL_KEYS = ("element_count", "missing_count", "partial_unexpected_list")


def json_safe(value: Any) -> Any:
    """``value`` with decimals, dates and other non-JSON types converted."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID | bytes):
        return str(value)
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set):
        return [json_safe(item) for item in value]
    return value


def expectation_name(config: Any) -> str:
    """The rule name of a generated expectation, else a readable name for a hand-written one."""
    meta = config.meta or {}
    named = meta.get("rule") or meta.get("name") or config.description
    if named:
        return str(named)
    column = config.kwargs.get("column")
    return f"{config.type}({column})" if column else config.type


def severity_of(config: Any, plan: SuitePlan, on_failure: str) -> str:
    """``fail`` or ``warn``: GX ``critical`` fails (for hand-written suites: as the pipeline
    says in ``on_failure``), ``warning``/``info`` warn."""
    gx_severity = getattr(config.severity, "value", config.severity) or "critical"
    if gx_severity != "critical":
        return "warn"
    return "fail" if plan.generated else on_failure


def _error(exception_info: Any) -> str | None:
    infos = exception_info or {}
    if "raised_exception" in infos:  # one expectation's own exception
        infos = {"": infos}
    for info in infos.values():
        if isinstance(info, dict) and info.get("raised_exception"):
            message = str(info.get("exception_message") or "error")
            return redact(message.split("\n[SQL:")[0].strip())[:500]
    return None


def check_from_result(
    result: Any, plan: SuitePlan, *, stage: str, load_id: str | None, on_failure: str
) -> CheckRecord:
    """One GX expectation result as a check row."""
    config = result.expectation_config
    outcome = result.result or {}
    details = {key: json_safe(outcome[key]) for key in _DETAIL_KEYS if key in outcome}
    error = _error(result.exception_info)
    if error:
        details["error"] = error
    sample = samples.from_result(outcome) if not result.success else None
    if sample:
        details["sample"] = sample
    observed = outcome.get("observed_value", outcome.get("unexpected_count"))
    meta = config.meta or {}
    if "expected" in meta:
        details["expected"] = json_safe(meta["expected"])
        if result.success:
            observed = meta["expected"]
    details["expected_text"] = details.get("expected_text") or expected_text(config)
    percent = outcome.get("unexpected_percent")
    return CheckRecord(
        stage=stage,
        suite=plan.name,
        expectation_type=config.type,
        expectation_name=expectation_name(config),
        table_name=plan.target.label,
        column_name=config.kwargs.get("column"),
        severity=severity_of(config, plan, on_failure),
        success=bool(result.success),
        observed_value=json_safe(observed),
        unexpected_percent=None if percent is None else float(percent),
        details=details,
        load_id=load_id,
    )


def expected_text(config: Any) -> str:
    """What the expectation asks for, in words: "≤ 10 % null", "between 0 and -", "= 0"."""
    kwargs, meta = config.kwargs, config.meta or {}
    if "expected" in meta:
        return f"= {meta['expected']}"
    if config.type == "expect_column_values_to_not_be_null":
        mostly = kwargs.get("mostly", 1) or 1
        return f"≤ {(1 - mostly) * 100:.3g} % null" if mostly < 1 else "no nulls"
    if config.type == "expect_column_values_to_be_in_set":
        return "one of " + ", ".join(map(str, kwargs.get("value_set", [])))
    if "min_value" in kwargs or "max_value" in kwargs:
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        unit = " rows" if "row_count" in config.type else ""
        if high is None:
            return f"≥ {low}{unit}"
        return f"≤ {high}{unit}" if low is None else f"between {low} and {high}{unit}"
    if config.type == "unexpected_rows_expectation":
        return "no rows from the check query"
    return config.type


def missing_table_check(
    plan: SuitePlan, *, stage: str, load_id: str | None, schema: str, severity: str
) -> CheckRecord:
    """The one failed check that stands for a whole suite when its table does not exist."""
    return CheckRecord(
        stage=stage,
        suite=plan.name,
        expectation_type="table_exists",
        expectation_name=f"table {schema}.{plan.target.table} exists",
        table_name=plan.target.label,
        column_name=None,
        severity=severity,
        success=False,
        observed_value="missing",
        details={
            "error": f"table {schema}.{plan.target.table} does not exist: run the step that"
            " builds it (ingest for raw tables, dbt build for marts) or fix the rule's table"
        },
        load_id=load_id,
    )


def format_observed(check: CheckRecord, width: int = 60) -> str:
    """The observed value as shown in the console table."""
    value = check.observed_value
    if value is None:
        return check.details.get("error", "-")[:60] if check.details else "-"
    text = f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)
    if check.unexpected_percent and not check.success:
        text += f" ({check.unexpected_percent:.2f}%)"
    if "expected" in check.details and not check.success:
        text += f" (expected {check.details['expected']})"
    return text if len(text) <= width else text[: width - 1] + "…"
