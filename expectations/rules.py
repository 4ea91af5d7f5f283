"""Compile the quality rules of ``pipelines.yml`` to Great Expectations expectations.

Each rule becomes one expectation, described first as a plain dict (``type``, ``kwargs``,
``meta``, ``severity``, ``description``) so the mapping is testable without GX or a database:

| rule | GX expectation |
|---|---|
| not_null, max_null_percentage p | expect_column_values_to_not_be_null, mostly = 1 - p/100 |
| unique, max_duplicates n | unexpected_rows_expectation returning the duplicate rows |
| range min/max | expect_column_values_to_be_between (nulls are not checked) |
| accepted_values | expect_column_values_to_be_in_set (nulls are not checked) |
| row_count min/max | expect_table_row_count_to_be_between |
| sql with expected | unexpected_rows_expectation comparing the query's value |
| sql without expected | unexpected_rows_expectation: the query returns the bad rows |

Why duplicates are counted in SQL: GX's ``expect_column_values_to_be_unique`` counts every
row whose value repeats (both rows of a pair) and its ``mostly`` is a fraction of the batch;
``expect_column_proportion_of_unique_values_to_be_between`` needs the row count in advance
and fails on an empty table. Neither gives the article's "at most N duplicates" exactly.
Duplicates here are non-null rows minus distinct non-null values (a pair is one duplicate,
as pandas' ``duplicated()`` counts); the query returns a row only when they exceed ``n``, so
the expectation passes exactly when duplicates ≤ n. It costs one ``count(distinct)`` (GX runs
an unexpected-rows query twice: rows, then their count), cheaper than numbering rows.

A ``sql`` rule's query refers to its table as ``{batch}`` (GX substitutes the batch: the
whole table, or one ``_dlt_load_id`` of a raw table); with ``expected`` it must return a
single value, which must equal ``expected`` (``is not distinct from``, so ``null`` works).
"""

from __future__ import annotations

import contextlib
import io
import math
import os
from typing import TYPE_CHECKING, Any

from elt.config import Rule

if TYPE_CHECKING:
    from great_expectations.expectations.expectation import Expectation

GX_SEVERITY = {"fail": "critical", "warn": "warning"}
Spec = dict[str, Any]


class RuleCompileError(ValueError):
    """A rule that cannot be expressed as an expectation."""


def expectation_spec(rule: Rule) -> Spec:
    """The expectation (type, kwargs, meta, severity, description) ``rule`` compiles to."""
    type_, kwargs, description = _BUILDERS[rule.type](rule)
    spec: Spec = {
        "type": type_,
        "kwargs": kwargs,
        "meta": {"rule": rule.name, "rule_type": rule.type},
        "severity": GX_SEVERITY[rule.severity or "fail"],
    }
    if rule.type == "sql" and _has_expected(rule):
        spec["meta"]["expected"] = rule.expected
    if description:
        spec["description"] = description
    return spec


def to_expectation(spec: Spec) -> Expectation:
    """A GX expectation object from a spec (imports GX)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    # GX prints (not logs) a warning for a query without {batch}; a sql rule may name its
    # tables itself, so keep stdout clean.
    with contextlib.redirect_stdout(io.StringIO()):
        return ExpectationConfiguration(**spec).to_domain_obj()


def compile_rule(rule: Rule) -> Expectation:
    """The GX expectation for one rule."""
    return to_expectation(expectation_spec(rule))


# -- one builder per rule type: (expectation type, kwargs, description or None) -------------


def _not_null(rule: Rule) -> tuple[str, dict, str | None]:
    kwargs: dict[str, Any] = {"column": rule.column}
    mostly = round(1 - rule.max_null_percentage / 100, 12)
    if mostly < 1:
        kwargs["mostly"] = mostly
    return "expect_column_values_to_not_be_null", kwargs, None


def _unique(rule: Rule) -> tuple[str, dict, str | None]:
    query = duplicates_query(str(rule.column), rule.max_duplicates)
    allowed = (
        "no duplicate values"
        if rule.max_duplicates == 0
        else f"at most {rule.max_duplicates} duplicate value(s)"
    )
    description = (
        f"{rule.column} has {allowed} (a duplicate is a non-null row whose value an earlier"
        " row already has)"
    )
    return "unexpected_rows_expectation", {"unexpected_rows_query": query}, description


def _range(rule: Rule) -> tuple[str, dict, str | None]:
    kwargs: dict[str, Any] = {"column": rule.column}
    if rule.min is not None:
        kwargs["min_value"] = rule.min
    if rule.max is not None:
        kwargs["max_value"] = rule.max
    return "expect_column_values_to_be_between", kwargs, None


def _accepted_values(rule: Rule) -> tuple[str, dict, str | None]:
    return (
        "expect_column_values_to_be_in_set",
        {"column": rule.column, "value_set": list(rule.values)},
        None,
    )


def _row_count(rule: Rule) -> tuple[str, dict, str | None]:
    kwargs: dict[str, Any] = {}
    if rule.min is not None:
        kwargs["min_value"] = math.ceil(rule.min)
    if rule.max is not None:
        kwargs["max_value"] = math.floor(rule.max)
    return "expect_table_row_count_to_be_between", kwargs, None


def _sql(rule: Rule) -> tuple[str, dict, str | None]:
    query = (rule.sql or "").strip().rstrip(";").strip()
    if not _has_expected(rule):
        description = f"{rule.name}: the query returns no rows"
        return "unexpected_rows_expectation", {"unexpected_rows_query": query}, description
    query = (
        f"select actual from (select ({query}) as actual) as sql_check"
        f" where actual is distinct from {sql_literal(rule.expected)}"
    )
    description = f"{rule.name}: the query returns {rule.expected!r}"
    return "unexpected_rows_expectation", {"unexpected_rows_query": query}, description


_BUILDERS = {
    "not_null": _not_null,
    "unique": _unique,
    "range": _range,
    "accepted_values": _accepted_values,
    "row_count": _row_count,
    "sql": _sql,
}


def _has_expected(rule: Rule) -> bool:
    return "expected" in rule.model_fields_set


def duplicates_query(column: str, max_duplicates: int) -> str:
    """One row (the number of duplicates) when ``column`` has more than the allowed."""
    duplicates = f"count({quote_identifier(column)}) - count(distinct {quote_identifier(column)})"
    return (
        f"select {duplicates} as duplicates from {{batch}}"
        f" having {duplicates} > {int(max_duplicates)}"
    )


def observed_query(rule: Rule) -> str | None:
    """A query (with ``{batch}``) for the value to show when an SQL-based check failed.

    GX reports only how many rows an unexpected-rows query returned; the number of
    duplicates, or the value a ``sql`` rule's query returned, is fetched again on failure.
    """
    if rule.type == "unique":
        column = quote_identifier(str(rule.column))
        return f"select count({column}) - count(distinct {column}) from {{batch}}"
    if rule.type == "sql" and _has_expected(rule):
        return f"select ({(rule.sql or '').strip().rstrip(';').strip()})"
    return None


def quote_identifier(name: str) -> str:
    """A PostgreSQL quoted identifier."""
    return '"' + name.replace('"', '""') + '"'


def sql_literal(value: Any) -> str:
    """``value`` as a SQL literal, with braces doubled for GX's ``{batch}`` formatting."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float) and math.isfinite(value):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("'", "''").replace("{", "{{").replace("}", "}}")
        return f"'{escaped}'"
    raise RuleCompileError(
        f"expected must be a number, a string, true/false or null (got {value!r})"
    )
