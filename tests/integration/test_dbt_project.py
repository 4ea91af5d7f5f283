"""The dbt project end to end: generated jaffle-shop data in the dlt layout → `dbt build`.

One story per module run, in its own database and target schema: three loads (A 20 days ago,
B 10 days ago, C now, with a late-arriving order and a menu price change in C), a build after
A+B, an incremental build after C, a rerun, then a full refresh. The marts are compared with
figures recomputed in Python from the CSVs, and the incremental result with the full refresh.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
import pytest
from psycopg2 import sql

from elt import config as elt_config
from elt import paths, source_freshness
from tests.helpers.jaffle_figures import (
    Entities,
    customer_figures,
    dollars,
    mart_row_counts,
    merge_loads,
    order_figures,
)
from tests.helpers.raw_data import generate_jaffle_csvs, load_raw, new_load_id, read_entities

pytestmark = pytest.mark.integration

PROJECT = paths.dbt_project_dir()
MARTS = {
    "customers": "customer_id",
    "orders": "order_id",
    "order_items": "order_item_id",
    "products": "product_id",
    "locations": "location_id",
    "supplies": "supply_uuid",
    "customer_mentions_daily": "tweeted_on",
}
CHANGED_SKU = "JAF-001"  # its price goes up by a dollar in load C
DAY = 86400

TableRows = dict[str, list[tuple]]


# --- running dbt ------------------------------------------------------------------------


@dataclass
class Dbt:
    """dbt in-process against one database and target schema, with its own target folder."""

    env: dict[str, str]
    target_path: Path
    log_path: Path
    project: Path = PROJECT

    def __call__(self, *args: str):
        """``dbt <args>``; returns dbt's result object (``.success``, ``.result``)."""
        from dbt.cli.main import dbtRunner

        argv = [
            *args,
            "--project-dir",
            str(self.project),
            "--profiles-dir",
            str(self.project),
            "--target-path",
            str(self.target_path),
            "--log-path",
            str(self.log_path),
        ]
        with pytest.MonkeyPatch.context() as patch:
            for key, value in self.env.items():
                patch.setenv(key, value)
            return dbtRunner().invoke(argv)


def dbt_env(pg, database: str, schema: str) -> dict[str, str]:
    """The variables profiles.yml reads, pointing at ``database`` on the test server."""
    return {
        "PGHOST": pg.host,
        "PGPORT": str(pg.port),
        "PGUSER": pg.user,
        "DBT_ENV_SECRET_PGPASSWORD": pg.password,
        "PGDATABASE": database,
        "ELT_DBT_SCHEMA": schema,
        "ELT_DBT_THREADS": "4",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DO_NOT_TRACK": "1",
    }


# parsing renders profiles.yml but never connects
PARSE_ENV = {
    "PGHOST": "127.0.0.1",
    "PGPORT": "5432",
    "PGUSER": "nobody",
    "PGDATABASE": "nowhere",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
}


def statuses(result) -> dict[str, str]:
    """Node name → status of a dbt run."""
    return {r.node.name: str(r.status) for r in result.result.results}


def failed(result) -> set[str]:
    """Names of the nodes that failed or errored."""
    return {name for name, status in statuses(result).items() if status in {"fail", "error"}}


def rows_affected(result, name: str) -> int:
    """Rows the node's main statement wrote (a merge: inserted + updated)."""
    node = next(r for r in result.result.results if r.node.name == name)
    return int(node.adapter_response["rows_affected"])


@contextmanager
def scratch_database(pg, prefix: str) -> Iterator[tuple[str, str]]:
    """A fresh database on the test server, dropped afterwards; yields (name, url)."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    url = pg.create_database(name)
    try:
        yield name, url
    finally:
        admin = psycopg2.connect(pg.url("postgres"))
        admin.autocommit = True
        try:
            with admin.cursor() as cur:
                statement = sql.SQL("drop database if exists {} with (force)")
                cur.execute(statement.format(sql.Identifier(name)))
        finally:
            admin.close()


# --- reading the warehouse --------------------------------------------------------------


def query(url: str, statement, params=None) -> list[tuple]:
    """All rows of one query."""
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall()
    finally:
        conn.close()


def mart_rows(url: str, schema: str) -> TableRows:
    """Every mart's rows, ordered by its key."""
    return {
        mart: query(
            url,
            sql.SQL("select * from {}.{} order by {}").format(
                sql.Identifier(schema), sql.Identifier(mart), sql.Identifier(key)
            ),
        )
        for mart, key in MARTS.items()
    }


def as_dicts(url: str, schema: str, table: str) -> list[dict]:
    """A table's rows as dicts."""
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                sql.SQL("select * from {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
            )
            names = [column.name for column in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    finally:
        conn.close()


# --- the data: three loads cut from one generated dataset ------------------------------


@dataclass
class Loads:
    """The generated dataset and how it was cut into loads A, B and C."""

    full: Entities
    a: Entities
    b: Entities
    c: Entities
    late_order_id: str
    load_ids: dict[str, str] = field(default_factory=dict)


def _load_of_day(day: str, days: list[str]) -> str:
    """Days 1-10 of the data come in load a, days 11-14 in b, the rest in c."""
    return "a" if day < days[10] else "b" if day < days[14] else "c"


def _orders_by_load(orders: list[dict[str, str]], days: list[str]) -> dict[str, str]:
    """order id → the load that brings it; one early order of a regular arrives late, in c."""
    which = {order["id"]: _load_of_day(order["ordered_at"][:10], days) for order in orders}
    in_a = Counter(order["customer"] for order in orders if which[order["id"]] == "a")
    late = next(
        order
        for order in sorted(orders, key=lambda o: (o["ordered_at"], o["id"]))
        if which[order["id"]] == "a" and in_a[order["customer"]] >= 3
    )
    which[late["id"]] = "c"
    return which


def split_loads(full: Entities) -> Loads:
    """Cut the dataset: dimensions in A; facts by day into A, B, C; a price change in C."""
    days = sorted({order["ordered_at"][:10] for order in full["orders"]})
    which = _orders_by_load(full["orders"], days)
    loads: dict[str, dict[str, list]] = {name: defaultdict(list) for name in "abc"}
    for entity in ("customers", "products", "stores", "supplies"):
        loads["a"][entity] = full[entity]
    for order in full["orders"]:
        loads[which[order["id"]]]["orders"].append(order)
    for item in full["items"]:
        loads[which[item["order_id"]]]["items"].append(item)
    for tweet in full["tweets"]:
        loads[_load_of_day(tweet["tweeted_at"][:10], days)]["tweets"].append(tweet)
    changed = next(p for p in full["products"] if p["sku"] == CHANGED_SKU)
    repriced = {**changed, "price": str(int(changed["price"]) + 100)}
    loads["c"]["products"] = [repriced]
    final = {
        **full,
        "products": [repriced if p["sku"] == CHANGED_SKU else p for p in full["products"]],
    }
    late_id = next(o["id"] for o in loads["c"]["orders"] if o["ordered_at"][:10] < days[10])
    return Loads(final, dict(loads["a"]), dict(loads["b"]), dict(loads["c"]), late_id)


# --- the story --------------------------------------------------------------------------


@dataclass
class Story:
    """Everything the tests look at, recorded once per module run."""

    url: str
    schema: str
    loads: Loads
    first_build: object
    first_marts: TableRows
    incremental_build: object
    incremental_marts: TableRows
    rerun: object
    rerun_marts: TableRows
    full_refresh: object
    full_refresh_marts: TableRows
    target_path: Path


@pytest.fixture(scope="module")
def jaffle_csvs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Twenty days of generated jaffle-shop data, as CSV files."""
    return generate_jaffle_csvs(tmp_path_factory.mktemp("jaffle"), days=20, seed=7)


@pytest.fixture(scope="module")
def story(pg, jaffle_csvs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    """Load A+B → build → load C → incremental build → rerun → full refresh."""
    with scratch_database(pg, "dbt_project") as (database, url):
        schema = f"audit_{uuid.uuid4().hex[:8]}"
        work = tmp_path_factory.mktemp("dbt")
        dbt = Dbt(dbt_env(pg, database, schema), work / "target", work / "logs")
        loads = split_loads(read_entities(jaffle_csvs))
        now = time.time()
        loads.load_ids["a"] = load_raw(url, loads.a, load_id=new_load_id(now - 20 * DAY))
        loads.load_ids["b"] = load_raw(url, loads.b, load_id=new_load_id(now - 10 * DAY))
        first_build = dbt("build")
        first_marts = mart_rows(url, schema)
        loads.load_ids["c"] = load_raw(url, loads.c, load_id=new_load_id(now))
        incremental_build = dbt("build")
        incremental_marts = mart_rows(url, schema)
        rerun = dbt("run", "--select", "path:models/marts")
        rerun_marts = mart_rows(url, schema)
        full_refresh = dbt("run", "--full-refresh", "--select", "path:models/marts")
        yield Story(
            url=url,
            schema=schema,
            loads=loads,
            first_build=first_build,
            first_marts=first_marts,
            incremental_build=incremental_build,
            incremental_marts=incremental_marts,
            rerun=rerun,
            rerun_marts=rerun_marts,
            full_refresh=full_refresh,
            full_refresh_marts=mart_rows(url, schema),
            target_path=work / "target",
        )


def test_builds_succeed_with_every_kind_of_node(story: Story) -> None:
    for result in (story.first_build, story.incremental_build, story.rerun, story.full_refresh):
        assert result.success, failed(result)
    kinds = Counter(r.node.resource_type for r in story.first_build.result.results)
    assert kinds["model"] == 17
    assert kinds["unit_test"] >= 5
    assert kinds["test"] >= 100
    assert kinds["seed"] == 2 and kinds["snapshot"] == 1


def test_mart_row_counts_equal_source_counts(story: Story) -> None:
    first = merge_loads(story.loads.a, story.loads.b)
    assert {m: len(rows) for m, rows in story.first_marts.items()} == mart_row_counts(first)
    final = story.loads.full
    assert {m: len(rows) for m, rows in story.full_refresh_marts.items()} == mart_row_counts(final)


def test_customers_match_figures_recomputed_from_the_csvs(story: Story) -> None:
    customers = as_dicts(story.url, story.schema, "customers")
    actual = {
        c["customer_id"]: (c["count_lifetime_orders"], c["lifetime_spend"], c["customer_type"])
        for c in customers
    }
    assert actual == customer_figures(story.loads.full)
    assert sum(c["lifetime_spend"] for c in customers) == dollars(
        sum(int(o["order_total"]) for o in story.loads.full["orders"])
    )


def test_orders_match_figures_recomputed_from_the_csvs(story: Story) -> None:
    orders = as_dicts(story.url, story.schema, "orders")
    actual = {
        o["order_id"]: (
            o["order_total"],
            o["order_cost"],
            o["count_order_items"],
            o["customer_order_number"],
        )
        for o in orders
    }
    assert actual == order_figures(story.loads.full)
    assert all(o["order_total"] == o["subtotal"] + o["tax_paid"] for o in orders)


def test_incremental_build_merges_only_recent_loads(story: Story) -> None:
    loads = story.loads
    recent_orders = {o["id"] for o in [*loads.b["orders"], *loads.c["orders"]]}
    # items of orders loaded in B or C (within the lookback of B), plus every item of the
    # product whose price changed in C
    expected = sum(
        1 for i in loads.full["items"] if i["order_id"] in recent_orders or i["sku"] == CHANGED_SKU
    )
    assert rows_affected(story.incremental_build, "order_items") == expected
    assert expected < len(loads.full["items"])
    assert rows_affected(story.incremental_build, "orders") < len(loads.full["orders"])


def test_incremental_result_equals_full_refresh(story: Story) -> None:
    for mart in MARTS:
        assert story.incremental_marts[mart] == story.full_refresh_marts[mart], mart


def test_rerun_without_new_data_changes_nothing(story: Story) -> None:
    assert story.rerun_marts == story.incremental_marts


def test_late_arriving_order_renumbers_its_customer(story: Story) -> None:
    orders = {o["order_id"]: o for o in as_dicts(story.url, story.schema, "orders")}
    late = orders[story.loads.late_order_id]
    assert late["load_id"] == story.loads.load_ids["c"]
    numbers = sorted(
        (o["ordered_at"], o["order_id"], o["customer_order_number"])
        for o in orders.values()
        if o["customer_id"] == late["customer_id"]
    )
    assert [n for _, _, n in numbers] == list(range(1, len(numbers) + 1))
    assert late["customer_order_number"] < len(numbers)


def test_price_change_is_snapshotted_and_warned_about(story: Story) -> None:
    versions = query(
        story.url,
        sql.SQL(
            "select product_price, dbt_valid_to is null from {}.products_snapshot"
            " where product_id = %s order by dbt_valid_from"
        ).format(sql.Identifier(f"{story.schema}_snapshots")),
        (CHANGED_SKU,),
    )
    assert [current for _, current in versions] == [False, True]
    assert versions[1][0] == versions[0][0] + 1
    checks = statuses(story.incremental_build)
    assert checks["assert_order_items_price_sum_matches_subtotal"] == "warn"
    assert statuses(story.first_build)["assert_order_items_price_sum_matches_subtotal"] == "pass"


def test_every_built_column_is_documented(story: Story) -> None:
    manifest = json.loads((story.target_path / "manifest.json").read_text())
    for node in manifest["nodes"].values():
        if node["resource_type"] not in {"model", "seed", "snapshot"}:
            continue
        built = {
            row[0]
            for row in query(
                story.url,
                "select column_name from information_schema.columns"
                " where table_schema = %s and table_name = %s",
                (node["schema"], node["alias"]),
            )
        }
        assert built, f"{node['name']} was not built in {node['schema']}"
        assert built == set(node["columns"]), node["name"]


def test_schemas_follow_the_folders(story: Story) -> None:
    tables = query(
        story.url,
        "select table_schema, table_name from information_schema.tables where table_schema like %s",
        (f"{story.schema}%",),
    )
    by_schema: dict[str, set[str]] = defaultdict(set)
    for schema, table in tables:
        by_schema[schema.removeprefix(story.schema)].add(table)
    assert by_schema[""] == set(MARTS)
    assert by_schema["_seeds"] == {"store_regions", "sentiment_terms"}
    assert by_schema["_snapshots"] == {"products_snapshot"}
    assert "stg_shop__orders" in by_schema["_staging"]
    assert "int_order_items_joined" in by_schema["_staging"]


# --- broken inputs fail the test that guards them ---------------------------------------


def test_broken_inputs_fail_the_right_tests(pg, jaffle_csvs, tmp_path: Path) -> None:
    data = read_entities(jaffle_csvs)
    # a duplicated order (two rows, one id) and a negative menu price arrive in a second load
    duplicate = data["orders"][0]
    negative = {**data["products"][0], "price": "-100"}
    with scratch_database(pg, "dbt_broken") as (database, url):
        load_raw(url, data)
        load_raw(url, {"orders": [duplicate, duplicate], "products": [negative]})
        schema = f"audit_{uuid.uuid4().hex[:8]}"
        dbt = Dbt(dbt_env(pg, database, schema), tmp_path / "target", tmp_path / "logs")
        result = dbt(
            "build",
            "--select",
            "stg_shop__orders",
            "stg_shop__products",
            "--indirect-selection",
            "cautious",
        )
    assert not result.success
    failures = {r.node.name: r.failures for r in result.result.results if str(r.status) == "fail"}
    assert failures == {
        "unique_stg_shop__orders_order_id": 1,
        "accepted_range_stg_shop__products_product_price__0": 1,
    }
    assert failed(result) == set(failures)


# --- project conventions, from the manifest of `dbt parse` ------------------------------


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The parsed project (no database needed)."""
    work = tmp_path_factory.mktemp("parse")
    env = {**PARSE_ENV, **source_freshness.env(elt_config.load())}
    result = Dbt(env, work / "target", work / "logs")("parse")
    assert result.success, result.exception
    return json.loads((work / "target" / "manifest.json").read_text())


def _project_nodes(manifest: dict, *types: str) -> list[dict]:
    return [
        node
        for node in manifest["nodes"].values()
        if node["package_name"] == "elt" and node["resource_type"] in types
    ]


def test_every_model_source_and_macro_is_documented(manifest: dict) -> None:
    undocumented = []
    for node in _project_nodes(manifest, "model", "seed", "snapshot"):
        if not node["description"].strip() or not node["patch_path"]:
            undocumented.append(node["name"])
        undocumented += [
            f"{node['name']}.{name}"
            for name, column in node["columns"].items()
            if not column["description"].strip()
        ]
    assert undocumented == []
    for source in manifest["sources"].values():
        assert source["description"].strip(), source["unique_id"]
        assert all(c["description"].strip() for c in source["columns"].values()), source["name"]
    # dispatch implementations (default__x, postgres__x) share the description of x
    macros = [
        m
        for m in manifest["macros"].values()
        if m["package_name"] == "elt" and "__" not in m["name"]
    ]
    assert [m["name"] for m in macros if not m["description"].strip()] == []
    assert len(macros) >= 14


def test_every_model_has_its_own_properties_file_and_ends_with_final(manifest: dict) -> None:
    for node in _project_nodes(manifest, "model"):
        sql_file = Path(node["original_file_path"])
        assert node["patch_path"] == f"elt://{sql_file.with_suffix('.yml')}", node["name"]
        assert node["raw_code"].rstrip().endswith("select * from final"), node["name"]


def test_marts_have_enforced_contracts_with_types(manifest: dict) -> None:
    marts = [n for n in _project_nodes(manifest, "model") if n["fqn"][1] == "marts"]
    assert {n["name"] for n in marts} == set(MARTS)
    for node in marts:
        assert node["contract"]["enforced"], node["name"]
        assert all(c["data_type"] for c in node["columns"].values()), node["name"]
        assert "load_id" in node["columns"], node["name"]
        assert any(
            c["type"] == "primary_key"
            for col in node["columns"].values()
            for c in col["constraints"]
        ), node["name"]


def test_sources_check_freshness_on_the_dlt_load_time(manifest: dict) -> None:
    data_tables = [s for s in manifest["sources"].values() if s["name"] != "_dlt_loads"]
    assert {f"{s['source_name']}.{s['name']}" for s in data_tables} == {
        "shop.customers",
        "shop.orders",
        "shop.items",
        "shop.products",
        "shop.stores",
        "social.tweets",
        "landing.supplies",
    }
    # the thresholds are pipelines.yml's (sources.<name>.freshness), not dbt's own copy
    wanted = source_freshness.thresholds(elt_config.load())
    assert wanted["shop"]["error_after"] == {"count": 2, "period": "day"}
    for table in data_tables:
        assert table["loaded_at_field"] == "to_timestamp(_dlt_load_id::numeric)"
        freshness = {k: table["freshness"][k] for k in ("warn_after", "error_after")}
        assert freshness == wanted[table["source_name"]], table["name"]


def test_a_folder_without_schema_fails_the_parse_naming_the_model(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "macros").mkdir(parents=True)
    shutil.copy(PROJECT / "dbt_project.yml", project)
    shutil.copy(PROJECT / "profiles.yml", project)
    shutil.copy(PROJECT / "macros" / "generate_schema_name.sql", project / "macros")
    (project / "models" / "scratch").mkdir(parents=True)
    (project / "models" / "scratch" / "unplaced.sql").write_text("select 1 as one\n")
    result = Dbt(PARSE_ENV, tmp_path / "target", tmp_path / "logs", project=project)("parse")
    assert not result.success
    message = str(result.exception)
    assert "unplaced" in message
    assert "models/scratch/unplaced.sql" in message
    assert "+schema" in message
