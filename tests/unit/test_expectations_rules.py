"""The quality rules of pipelines.yml → GX expectations, without a database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from elt.config import Pipeline, Rule
from elt.runs import CheckRecord
from expectations.context import ContextError, sqlalchemy_url
from expectations.plan import (
    QualityConfigError,
    checkpoint_name,
    for_stage,
    generated_suites,
    handwritten_suites,
)
from expectations.results import format_observed, json_safe
from expectations.rules import (
    RuleCompileError,
    compile_rule,
    duplicates_query,
    expectation_spec,
    observed_query,
    sql_literal,
)
from expectations.targets import Target, TargetError, target_of


def rule(**fields) -> Rule:
    return Rule.model_validate({"table": "orders", **fields})


def test_not_null_maps_the_null_percentage_to_mostly() -> None:
    spec = expectation_spec(rule(type="not_null", column="customer_id", max_null_percentage=5))
    assert spec["type"] == "expect_column_values_to_not_be_null"
    assert spec["kwargs"] == {"column": "customer_id", "mostly": 0.95}
    assert spec["meta"] == {"rule": "not_null_orders_customer_id", "rule_type": "not_null"}
    assert spec["severity"] == "critical"
    strict = expectation_spec(rule(type="not_null", column="customer_id"))
    assert strict["kwargs"] == {"column": "customer_id"}  # mostly 1 is GX's default


def test_unique_counts_duplicates_exactly_in_sql() -> None:
    spec = expectation_spec(rule(type="unique", column="order_id", max_duplicates=2))
    assert spec["type"] == "unexpected_rows_expectation"
    query = spec["kwargs"]["unexpected_rows_query"]
    assert query == (
        'select count("order_id") - count(distinct "order_id") as duplicates from {batch}'
        ' having count("order_id") - count(distinct "order_id") > 2'
    )
    assert "at most 2 duplicate" in spec["description"]
    assert duplicates_query("id", 0).endswith("> 0")
    assert observed_query(rule(type="unique", column="order_id")) == (
        'select count("order_id") - count(distinct "order_id") from {batch}'
    )


def test_range_accepted_values_and_row_count() -> None:
    between = expectation_spec(rule(type="range", column="order_total", min=0))
    assert between["type"] == "expect_column_values_to_be_between"
    assert between["kwargs"] == {"column": "order_total", "min_value": 0}
    both = expectation_spec(rule(type="range", column="order_total", min=1, max=9.5))
    assert both["kwargs"] == {"column": "order_total", "min_value": 1, "max_value": 9.5}
    in_set = expectation_spec(
        rule(type="accepted_values", table="customers", column="kind", values=["new", "old"])
    )
    assert in_set["type"] == "expect_column_values_to_be_in_set"
    assert in_set["kwargs"] == {"column": "kind", "value_set": ["new", "old"]}
    rows = expectation_spec(rule(type="row_count", min=0.5, max=10.7))
    assert rows["type"] == "expect_table_row_count_to_be_between"
    assert rows["kwargs"] == {"min_value": 1, "max_value": 10}  # whole rows only


def test_sql_with_expected_compares_the_value() -> None:
    spec = expectation_spec(
        rule(
            type="sql",
            name="no_refunds",
            sql="select count(*) from {batch} where x < 0;",
            expected=0,
            severity="warn",
        )
    )
    assert spec["type"] == "unexpected_rows_expectation"
    assert spec["kwargs"]["unexpected_rows_query"] == (
        "select actual from (select (select count(*) from {batch} where x < 0) as actual)"
        " as sql_check where actual is distinct from 0"
    )
    assert spec["meta"] == {"rule": "no_refunds", "rule_type": "sql", "expected": 0}
    assert spec["severity"] == "warning"
    assert observed_query(rule(type="sql", sql="select 1;", expected=1)) == "select (select 1)"


def test_sql_without_expected_is_an_unexpected_rows_query() -> None:
    spec = expectation_spec(rule(type="sql", sql="select * from {batch} where x < 0"))
    assert spec["kwargs"] == {"unexpected_rows_query": "select * from {batch} where x < 0"}
    assert "expected" not in spec["meta"]
    assert observed_query(rule(type="sql", sql="select 1")) is None
    null_expected = expectation_spec(
        rule(type="sql", sql="select max(x) from {batch}", expected=None)
    )
    assert null_expected["kwargs"]["unexpected_rows_query"].endswith("is distinct from null")


def test_sql_literals_are_escaped() -> None:
    assert sql_literal("it's {x}") == "'it''s {{x}}'"
    assert sql_literal(True) == "true"
    assert sql_literal(2.5) == "2.5"
    with pytest.raises(RuleCompileError, match="expected must be a number"):
        sql_literal([1, 2])


def test_specs_become_gx_expectations() -> None:
    expectation = compile_rule(rule(type="range", column="order_total", min=0, severity="warn"))
    assert type(expectation).__name__ == "ExpectColumnValuesToBeBetween"
    assert expectation.column == "order_total"
    assert expectation.min_value == 0
    assert expectation.severity.value == "warning"
    unique = compile_rule(rule(type="unique", column="order_id"))
    assert type(unique).__name__ == "UnexpectedRowsExpectation"
    assert unique.meta["rule"] == "unique_orders_order_id"


def test_targets() -> None:
    assert target_of("orders") == Target("audit", None, "orders")
    raw = target_of("raw_shop.orders")
    assert (raw.stage, raw.schema, raw.table, raw.label) == (
        "raw",
        "raw_shop",
        "orders",
        "raw_shop.orders",
    )
    assert raw.qualified("audit") == ("raw_shop", "orders")
    assert target_of("orders").qualified("audit_x") == ("audit_x", "orders")
    with pytest.raises(TargetError, match="neither a mart nor a raw table"):
        target_of("analytics.orders")


def pipeline(rules: list[dict], **quality) -> Pipeline:
    return Pipeline.model_validate(
        {"name": "p", "sources": [], "quality": {"rules": rules, **quality}}
    )


def test_rules_group_into_one_suite_per_table() -> None:
    pipe = pipeline(
        [
            {"type": "not_null", "table": "orders", "column": "a"},
            {"type": "row_count", "table": "customers", "min": 1},
            {"type": "unique", "table": "orders", "column": "b"},
            {"type": "not_null", "table": "raw_shop.orders", "column": "id"},
        ],
        on_failure="warn",
    )
    plans = generated_suites(pipe)
    assert [(plan.name, len(plan.specs or [])) for plan in plans] == [
        ("p.orders", 2),
        ("p.customers", 1),
        ("p.raw_shop.orders", 1),
    ]
    assert all(plan.generated for plan in plans)
    assert plans[0].specs[0]["severity"] == "warning"  # on_failure: warn is the default
    assert [plan.name for plan in for_stage(plans, "raw")] == ["p.raw_shop.orders"]
    assert for_stage(plans, "raw", {"raw_other"}) == []
    assert [plan.name for plan in for_stage(plans, "audit")] == ["p.orders", "p.customers"]


def test_a_bad_table_names_the_rule() -> None:
    pipe = pipeline([{"type": "row_count", "table": "analytics.orders", "min": 1}])
    with pytest.raises(QualityConfigError, match=r"pipelines\.p\.quality\.rules\[0\]"):
        generated_suites(pipe)


def test_hand_written_suites_are_found_by_name(tmp_path: Path) -> None:
    (tmp_path / "team").mkdir()
    (tmp_path / "orders.json").write_text(json.dumps({"name": "orders", "expectations": []}))
    (tmp_path / "team" / "raw_checks.json").write_text(
        json.dumps({"name": "team.raw_checks", "meta": {"table": "raw_shop.orders"}})
    )
    pipe = pipeline([], suites=["orders", "team.raw_checks"])
    plans = handwritten_suites(pipe, tmp_path)
    assert [(p.name, p.target.label, p.generated) for p in plans] == [
        ("orders", "orders", False),
        ("team.raw_checks", "raw_shop.orders", False),
    ]
    missing = pipeline([], suites=["nope"])
    with pytest.raises(QualityConfigError, match=r"quality\.suites: 'nope': no suite file"):
        handwritten_suites(missing, tmp_path)


def test_checkpoint_names() -> None:
    assert checkpoint_name("p", "audit", None, by_load=False) == "p.audit"
    assert checkpoint_name("p", "raw", None, by_load=False) == "p.raw"
    assert checkpoint_name("p", "raw", "raw_shop", by_load=True) == "p.raw_shop.by_load_id"


def test_sqlalchemy_url_sets_the_search_path_and_keeps_options() -> None:
    url = "postgresql://u:p%40ss@h:5432/db?sslmode=require"
    assert sqlalchemy_url(url) == "postgresql+psycopg2://u:p%40ss@h:5432/db?sslmode=require"
    audit = sqlalchemy_url(url, search_path="audit")
    assert audit == (
        "postgresql+psycopg2://u:p%40ss@h:5432/db?sslmode=require&options=-csearch_path%3Daudit"
    )
    with pytest.raises(ContextError, match="not a plain schema name"):
        sqlalchemy_url(url, search_path="a; drop")


def test_observed_values_are_json_and_readable() -> None:
    from datetime import date
    from decimal import Decimal

    assert json_safe([Decimal("2"), Decimal("2.5"), date(2026, 1, 2)]) == [2, 2.5, "2026-01-02"]
    check = CheckRecord(
        stage="audit",
        suite="p.orders",
        expectation_type="t",
        expectation_name="n",
        table_name="orders",
        column_name=None,
        severity="fail",
        success=False,
        observed_value=1234,
        unexpected_percent=12.5,
        details={"expected": 0},
    )
    assert format_observed(check) == "1,234 (12.50%) (expected 0)"
    assert check.blocking and not check.warning


def test_gx_unexpected_index_list_becomes_the_sample_of_failing_rows() -> None:
    from expectations import samples

    result = {
        "unexpected_count": 12,
        "unexpected_index_column_names": ["shop_id", "order_no"],
        "partial_unexpected_index_list": [
            {"shop_id": "s1", "order_no": i, "customer_id": None} for i in range(12)
        ],
    }
    sample = samples.from_result(result)
    assert sample is not None
    assert sample["columns"] == ["shop_id", "order_no", "customer_id"]
    assert sample["rows"][0] == ["s1", "0", "null"]
    assert len(sample["rows"]) == samples.LIMIT
    # no keys asked for: GX returns plain values, there is no row to name
    assert samples.from_result({"partial_unexpected_list": [None, None]}) is None
    base = {"result_format": "SUMMARY"}
    assert samples.result_format(base, []) == base
    assert samples.result_format(base, ["id"])["unexpected_index_column_names"] == ["id"]
