"""The GX quality gate on real PostgreSQL: rules → suites → checkpoints → checks, Data Docs.

One module-scoped story: small mart-shaped tables with good data in one schema and crafted
bad data in another (switched through ELT_DBT_SCHEMA, as the audit schema is), a raw table
with two dlt loads, and a throwaway GX context folder (ELT_GX_DIR).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
import pytest
import typer
import yaml
from typer.testing import CliRunner

from elt import paths, runs
from elt.config import ProjectConfig, load
from expectations import context as gx_context
from expectations.cli import validate
from expectations.gate import QualityOutcome, run_quality

pytestmark = pytest.mark.integration

TAG = uuid.uuid4().hex[:8]
GOOD, BAD = f"gx_good_{TAG}", f"gx_bad_{TAG}"
SOURCE = f"gx{TAG}"
RAW = f"raw_{SOURCE}"
LOAD_1, LOAD_2 = f"1000.{TAG}", f"2000.{TAG}"

ORDERS = (
    "create table {s}.orders (order_id text, location_id text, customer_id text,"
    " subtotal numeric(16, 2), tax_paid numeric(16, 2), order_total numeric(16, 2),"
    " ordered_at timestamptz, order_cost numeric(16, 2), customer_order_number int)"
)
CUSTOMERS = (
    "create table {s}.customers (customer_id text, customer_name text, customer_type text,"
    " first_ordered_at timestamptz)"
)


def good_orders() -> list[tuple]:
    return [
        (f"o{i}", "l1", f"c{i % 3 + 1}", 10, 0.6, 10.6, f"2026-01-0{i} 12:00+00", 3, i)
        for i in range(1, 9)
    ]


def bad_orders() -> list[tuple]:
    rows = [list(row) for row in good_orders()]
    rows[1][0], rows[3][0] = "o1", "o3"  # o1 and o3 twice: 2 duplicates
    rows[4][2] = rows[5][2] = None  # 2 of 8 customer ids missing: 25 %
    rows[5][5] = -5  # a negative total
    rows[6][5], rows[6][6], rows[6][8] = 5000, "2999-01-01 00:00+00", 0  # huge, future, no. 0
    return [tuple(row) for row in rows]


GOOD_CUSTOMERS = [
    ("c1", "Ann", "new", "2026-01-01"),
    ("c2", "Bob", "returning", "2026-01-02"),
    ("c3", "Cid", "returning", "2026-01-03"),
    ("c4", "Dee", "new", None),  # never ordered: only the warn rule minds
]
BAD_CUSTOMERS = [*GOOD_CUSTOMERS, ("c5", "Eve", "vip", "2026-01-05"), ("c6", "Fay", "new", None)]

RULES = [
    {"type": "not_null", "table": "orders", "column": "customer_id", "max_null_percentage": 10},
    {"type": "unique", "table": "orders", "column": "order_id", "max_duplicates": 1},
    {"type": "range", "table": "orders", "column": "order_total", "min": 0, "max": 1000},
    {
        "type": "accepted_values",
        "table": "customers",
        "column": "customer_type",
        "values": ["new", "returning"],
    },
    {"type": "row_count", "table": "customers", "min": 1, "max": 5},
    {
        "type": "sql",
        "name": "total_is_subtotal_plus_tax",
        "table": "orders",
        "sql": "select count(*) from {batch} where order_total <> subtotal + tax_paid",
        "expected": 0,
    },
    {
        "type": "sql",
        "name": "no_future_orders",
        "table": "orders",
        "sql": "select order_id from {batch} where ordered_at > now()",
    },
    {
        "type": "not_null",
        "name": "customers_have_ordered",
        "table": "customers",
        "column": "first_ordered_at",
        "severity": "warn",
    },
    {"type": "not_null", "table": f"{RAW}.orders", "column": "id"},
    {"type": "row_count", "table": f"{RAW}.orders", "min": 1},
]
PIPELINES = {
    "gxt": {"sources": [], "quality": {"on_failure": "fail", "rules": RULES, "suites": ["orders"]}},
    "gxt_missing": {
        "sources": [],
        "quality": {"rules": [{"type": "row_count", "table": "no_such_mart", "min": 1}]},
    },
}


@dataclass
class Story:
    """What the module set up and what the gate returned for it."""

    url: str
    password: str
    config: ProjectConfig
    config_file: Path
    gx_dir: Path
    outcomes: dict[str, QualityOutcome] = field(default_factory=dict)


def _create_tables(url: str) -> None:
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            for schema, orders, customers in (
                (GOOD, good_orders(), GOOD_CUSTOMERS),
                (BAD, bad_orders(), BAD_CUSTOMERS),
            ):
                cur.execute(f"create schema {schema}")
                cur.execute(ORDERS.format(s=schema))
                cur.execute(CUSTOMERS.format(s=schema))
                cur.executemany(
                    f"insert into {schema}.orders values ({', '.join(['%s'] * 9)})", orders
                )
                cur.executemany(
                    f"insert into {schema}.customers values (%s, %s, %s, %s)", customers
                )
            cur.execute(f"create schema {RAW}")
            cur.execute(
                f"create table {RAW}.orders (code text, id text, _dlt_load_id text not null)"
            )
            cur.executemany(
                f"insert into {RAW}.orders values (%s, %s, %s)",
                [
                    ("a", "1", LOAD_1),
                    ("b", "2", LOAD_1),
                    ("c", "3", LOAD_1),
                    ("d", "4", LOAD_2),
                    ("e", None, LOAD_2),
                ],
            )
    finally:
        conn.close()


def _drop_tables(url: str) -> None:
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            for schema in (GOOD, BAD, RAW):
                cur.execute(f"drop schema if exists {schema} cascade")
    finally:
        conn.close()


@pytest.fixture(scope="module")
def story(pg, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    url = pg.url()
    runs.migrate(url)
    _create_tables(url)
    gx_dir = tmp_path_factory.mktemp("gx")
    # the committed hand-written suite (expectations/suites/orders.json) runs beside the
    # generated ones
    config_file = gx_dir / "pipelines.yml"
    # the raw table's key (not its checked column) identifies the rows GX reports
    sources = {
        SOURCE: {
            "type": "sql_database",
            "credentials": "env:GX_TEST_SHOP_URL?",
            "tables": {"orders": {"primary_key": "code"}},
        }
    }
    config_file.write_text(
        yaml.safe_dump({"version": 1, "sources": sources, "pipelines": PIPELINES})
    )
    runs.record_loads(url, f"load-{TAG}", [runs.LoadRecord(SOURCE, "orders", 3, LOAD_1, 0.1)])
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ELT_GX_DIR", str(gx_dir))
        patch.setenv("ELT_DBT_SCHEMA", GOOD)
        config = load(config_file)
        yield Story(url, pg.password, config, config_file, gx_dir)
    _drop_tables(url)


def gate(story: Story, key: str, *, schema: str = GOOD, **kwargs) -> QualityOutcome:
    """Run the gate once per key and remember the outcome."""
    if key not in story.outcomes:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("ELT_DBT_SCHEMA", schema)
            kwargs.setdefault("stage", "audit")
            story.outcomes[key] = run_quality(
                story.config,
                kwargs.pop("pipeline", "gxt"),
                run_id=f"{key}-{TAG}",
                url=story.url,
                **kwargs,
            )
    return story.outcomes[key]


def by_name(outcome: QualityOutcome) -> dict[str, object]:
    return {check.expectation_name: check for check in outcome.checks}


GENERATED_AUDIT = [
    "not_null_orders_customer_id",
    "unique_orders_order_id",
    "range_orders_order_total",
    "accepted_values_customers_customer_type",
    "row_count_customers",
    "total_is_subtotal_plus_tax",
    "no_future_orders",
]


@pytest.mark.parametrize("name", GENERATED_AUDIT)
def test_each_rule_passes_on_good_data(story: Story, name: str) -> None:
    check = by_name(gate(story, "good"))[name]
    assert check.success, check
    assert check.severity == "fail"
    assert check.stage == "audit"


def test_good_data_observed_values(story: Story) -> None:
    checks = by_name(gate(story, "good"))
    assert checks["row_count_customers"].observed_value == 4
    assert checks["not_null_orders_customer_id"].observed_value == 0
    assert checks["unique_orders_order_id"].observed_value == 0
    assert checks["total_is_subtotal_plus_tax"].observed_value == 0


@pytest.mark.parametrize(
    ("name", "observed", "detail"),
    [
        ("not_null_orders_customer_id", 2, {"unexpected_percent": 25.0}),
        ("unique_orders_order_id", 2, {}),
        ("range_orders_order_total", 2, {"sample": [-5, 5000]}),
        ("accepted_values_customers_customer_type", 1, {"sample": ["vip"]}),
        ("row_count_customers", 6, {}),
        ("total_is_subtotal_plus_tax", 2, {"expected": 0}),
        ("no_future_orders", 1, {}),
    ],
)
def test_each_rule_fails_on_bad_data(story: Story, name, observed, detail) -> None:
    check = by_name(gate(story, "bad", schema=BAD))[name]
    assert not check.success
    assert check.blocking
    assert check.observed_value == observed
    if "unexpected_percent" in detail:
        assert check.unexpected_percent == pytest.approx(detail["unexpected_percent"])
    if "sample" in detail:
        assert sorted(check.details["partial_unexpected_list"]) == detail["sample"]
    if "expected" in detail:
        assert check.details["expected"] == detail["expected"]


def test_a_warn_rule_never_blocks(story: Story) -> None:
    good = gate(story, "good")
    warned = by_name(good)["customers_have_ordered"]
    assert not warned.success and warned.severity == "warn"
    assert good.warnings == [warned]
    assert good.blocking == [] and good.passed
    bad = gate(story, "bad", schema=BAD)
    assert by_name(bad)["customers_have_ordered"] in bad.warnings
    assert all(check.severity == "fail" for check in bad.blocking)
    assert not bad.passed


def test_the_hand_written_suite_runs_beside_the_rules(story: Story) -> None:
    good = [c for c in gate(story, "good").checks if c.suite == "orders"]
    assert {c.expectation_name for c in good} >= {
        "every_order_has_a_time",
        "customer_order_number_starts_at_1",
    }
    assert all(c.success for c in good)
    mean = next(c for c in good if c.expectation_name == "average_order_looks_usual")
    assert mean.severity == "warn"  # severity: warning in the suite
    assert mean.observed_value == pytest.approx(10.6)
    bad = {
        c.expectation_name: c for c in gate(story, "bad", schema=BAD).checks if c.suite == "orders"
    }
    numbered = bad["customer_order_number_starts_at_1"]
    assert not numbered.success and numbered.blocking and numbered.observed_value == 1


def test_raw_tables_whole_and_per_load(story: Story) -> None:
    whole = by_name(gate(story, "raw", stage="raw"))
    assert whole[f"not_null_{RAW}_orders_id"].observed_value == 1
    assert not whole[f"not_null_{RAW}_orders_id"].success
    assert whole[f"row_count_{RAW}_orders"].observed_value == 5
    # GX's unexpected_index_list, keyed by the primary key from pipelines.yml
    sample = whole[f"not_null_{RAW}_orders_id"].details["sample"]
    assert sample == {"columns": ["code", "id"], "rows": [["e", "null"]]}
    first = gate(story, "raw-load-1", stage="raw", load_id=LOAD_1)  # source from elt_meta.loads
    assert all(check.success for check in first.checks)
    assert by_name(first)[f"row_count_{RAW}_orders"].observed_value == 3
    assert {check.load_id for check in first.checks} == {LOAD_1}
    second = by_name(gate(story, "raw-load-2", stage="raw", load_id=LOAD_2, source=SOURCE))
    assert second[f"not_null_{RAW}_orders_id"].observed_value == 1
    assert second[f"row_count_{RAW}_orders"].observed_value == 2
    assert second[f"not_null_{RAW}_orders_id"].details["sample"]["rows"] == [["e", "null"]]
    checkpoints = story.gx_dir / "gx" / "checkpoints"
    # one checkpoint per table: its result format names the table's key
    checkpoint = json.loads((checkpoints / f"gxt.{RAW}.by_load_id.{RAW}.orders.json").read_text())
    assert checkpoint["result_format"]["unexpected_index_column_names"] == ["code"]


def test_a_missing_table_is_one_clear_failure(story: Story) -> None:
    outcome = gate(story, "missing", pipeline="gxt_missing")
    [check] = outcome.checks
    assert check.blocking and check.observed_value == "missing"
    assert f"table {GOOD}.no_such_mart does not exist" in check.details["error"]


def test_checks_are_recorded(story: Story) -> None:
    bad = gate(story, "bad", schema=BAD)
    with runs.connect(story.url) as conn, conn.cursor() as cur:
        cur.execute(
            "select suite, expectation_type, expectation_name, table_name, column_name, severity,"
            " success, observed_value, unexpected_percent, details, stage, load_id"
            " from elt_meta.checks where run_id = %s",
            (f"bad-{TAG}",),
        )
        rows = {row[2]: row for row in cur.fetchall()}
    assert len(rows) == len(bad.checks)
    nulls = rows["not_null_orders_customer_id"]
    assert nulls[:7] == (
        "gxt.orders",
        "expect_column_values_to_not_be_null",
        "not_null_orders_customer_id",
        "orders",
        "customer_id",
        "fail",
        False,
    )
    assert nulls[7] == 2 and nulls[8] == pytest.approx(25.0)
    assert rows["range_orders_order_total"][9]["partial_unexpected_list"] == [-5, 5000]
    assert rows["total_is_subtotal_plus_tax"][7] == 2
    assert rows["customers_have_ordered"][5:7] == ("warn", False)
    assert {row[10] for row in rows.values()} == {"audit"}
    gate(story, "raw-load-1", stage="raw", load_id=LOAD_1)
    with runs.connect(story.url) as conn, conn.cursor() as cur:
        cur.execute(
            "select stage, load_id, count(*) from elt_meta.checks where run_id = %s group by 1, 2",
            (f"raw-load-1-{TAG}",),
        )
        assert cur.fetchall() == [("raw", LOAD_1, 2)]


def test_data_docs_show_every_suite(story: Story) -> None:
    outcomes = [gate(story, "good"), gate(story, "raw", stage="raw")]
    index = outcomes[-1].docs_index
    assert index == gx_context.docs_dir() / "index.html"
    html = index.read_text()
    for suite in ("gxt.orders", "gxt.customers", f"gxt.{RAW}.orders", "orders"):
        page = gx_context.docs_dir() / "expectations" / Path(*suite.split("."))
        assert page.with_suffix(".html").exists(), suite
        assert suite in html, suite
    result_page = next((gx_context.docs_dir() / "validations").rglob(f"good-{TAG}/*/*.html"))
    assert "not_null_orders_customer_id" in result_page.read_text() or "customer_id" in (
        result_page.read_text()
    )


def test_gx_files_are_stable_and_hold_no_password(story: Story) -> None:
    gate(story, "good")
    project = story.gx_dir / "gx"
    snapshot = {p: p.read_bytes() for p in project.rglob("*") if p.is_file()}
    gate(story, "good-again")
    assert {p: p.read_bytes() for p in project.rglob("*") if p.is_file()} == snapshot
    config = (project / "great_expectations.yml").read_text()
    assert "${ELT_GX_AUDIT_URL}" in config and "${ELT_GX_RAW_URL}" in config
    written = [
        *project.rglob("*"),
        *gx_context.docs_dir().rglob("*"),
        *gx_context.results_dir().rglob("*"),
        *paths.expectations_dir().rglob("*"),
    ]
    leaks = [str(p) for p in written if p.is_file() and story.password.encode() in p.read_bytes()]
    assert leaks == []


def test_suites_follow_rule_changes_with_minimal_diffs(story: Story) -> None:
    gate(story, "good")
    suite_file = story.gx_dir / "gx" / "expectations" / "gxt" / "customers.json"
    before = json.loads(suite_file.read_text())["expectations"]
    changed = json.loads(json.dumps(PIPELINES))
    changed["gxt"]["quality"]["rules"][4]["max"] = 50
    config = ProjectConfig.model_validate({"pipelines": changed})
    run_quality(config, "gxt", run_id=f"changed-{TAG}", url=story.url, stage="audit")
    after = json.loads(suite_file.read_text())["expectations"]
    assert [e["id"] for e in after if e["type"] != "expect_table_row_count_to_be_between"] == [
        e["id"] for e in before if e["type"] != "expect_table_row_count_to_be_between"
    ]
    row_count = next(e for e in after if e["type"] == "expect_table_row_count_to_be_between")
    assert row_count["kwargs"] == {"min_value": 1, "max_value": 50}
    run_quality(story.config, "gxt", run_id=f"restored-{TAG}", url=story.url, stage="audit")
    restored = json.loads(suite_file.read_text())["expectations"]
    without_ids = [{k: v for k, v in e.items() if k != "id"} for e in restored]
    assert without_ids == [{k: v for k, v in e.items() if k != "id"} for e in before]


def test_cli_prints_the_table_and_exits_1_on_a_blocking_failure(story: Story) -> None:
    app = typer.Typer()
    app.command()(validate)
    app.command("noop")(lambda: None)
    runner = CliRunner()
    env = {"ELT_CONFIG": str(story.config_file), "COLUMNS": "200"}
    bad = runner.invoke(
        app, ["validate", "gxt", "--stage", "audit"], env={**env, "ELT_DBT_SCHEMA": BAD}
    )
    assert bad.exit_code == 1, bad.output
    assert "observed" in bad.output and "severity" in bad.output
    assert "unique_orders_order_id" in bad.output
    assert "quality gate closed" in bad.output
    good = runner.invoke(app, ["validate", "gxt"], env={**env, "ELT_DBT_SCHEMA": GOOD})
    assert good.exit_code == 0, good.output
    assert "0 blocking, 1 warnings" in good.output
    assert story.password not in bad.output + good.output
    unknown = runner.invoke(app, ["validate", "nope"], env=env)
    assert unknown.exit_code == 2 and "no pipeline 'nope'" in unknown.output
