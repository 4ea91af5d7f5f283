"""Export of published marts to Parquet, partitioned by run date, on real PostgreSQL and S3.

A throwaway database holds a small published schema (two mart-shaped tables with the types
the marts use, NULLs included) and an audit table that is not published. Exports go to a
local folder and to an S3-compatible server (moto on 127.0.0.1); every file is read back with
pyarrow and compared row by row with the table, values and types.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import psycopg2
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from elt.config import ProjectConfig
from elt.export import ExportError, UnknownModelError, export_models
from elt.spec import plan
from elt.steps import RunResult, StepRunner

pytestmark = pytest.mark.integration

DATABASE = "elt_export_test"
RUN_DATE = date(2026, 3, 4)
MODELS = ["orders", "customers"]

SETUP = """
create schema analytics;
create table analytics.orders (
    order_id text primary key,
    customer_id text,
    order_total numeric(16, 2),
    tax_rate numeric(6, 4),
    quantity integer,
    load_seq bigint,
    is_food_order boolean,
    ordered_on date,
    ordered_at timestamptz,
    state varchar(2)
);
insert into analytics.orders values
    ('o1', 'c1', 12.50, 0.0825, 2, 1, true, '2026-03-01', '2026-03-01 09:15:00.123456+00', 'NY'),
    ('o2', 'c2', 99999999999999.99, 0.0000, 2147483647, 9223372036854775807, false,
     '2026-03-02', '2026-03-02 23:59:59.999999-05', 'CA'),
    ('o3', 'c1', -0.01, 1.5, -1, 0, true, '1999-12-31', '1999-12-31 23:00:00+00', 'TX'),
    ('o4', null, null, null, null, null, null, null, null, null);
create table analytics.customers (
    customer_id text not null,
    customer_name text,
    lifetime_spend numeric(16, 2),
    first_ordered_at timestamptz
);
insert into analytics.customers values
    ('c1', 'Ann', 12.49, '2026-03-01 09:15:00+00'),
    ('c2', 'Ben ünïcode', 99999999999999.99, '2026-03-03 04:05:06.000007+00'),
    ('c3', null, 0.00, null);
create schema audit;
create table audit.candidates (id integer);
"""

EXPECTED_TYPES = {
    "orders": {
        "order_id": pa.string(),
        "customer_id": pa.string(),
        "order_total": pa.decimal128(16, 2),
        "tax_rate": pa.decimal128(6, 4),
        "quantity": pa.int32(),
        "load_seq": pa.int64(),
        "is_food_order": pa.bool_(),
        "ordered_on": pa.date32(),
        "ordered_at": pa.timestamp("us", tz="UTC"),
        "state": pa.string(),
    },
    "customers": {
        "customer_id": pa.string(),
        "customer_name": pa.string(),
        "lifetime_spend": pa.decimal128(16, 2),
        "first_ordered_at": pa.timestamp("us", tz="UTC"),
    },
}


@pytest.fixture(scope="module")
def warehouse_url(pg) -> str:
    url = pg.create_database(DATABASE)
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(SETUP)
    return url


@pytest.fixture
def s3(s3_server: str, monkeypatch: pytest.MonkeyPatch):
    """A boto3 client of the local S3 with test credentials in the standard AWS variables."""
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    return boto3.client("s3", endpoint_url=s3_server)


def table_rows(url: str, table: str) -> list[tuple]:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(f"select * from analytics.{table} order by 1")
        return cur.fetchall()


def file_rows(table: pa.Table) -> list[tuple]:
    return sorted((tuple(row.values()) for row in table.to_pylist()), key=lambda row: row[0])


def assert_same_as_table(url: str, model: str, exported: pa.Table) -> None:
    """Types as declared in PostgreSQL, and every row equal to the table's."""
    assert {f.name: f.type for f in exported.schema} == EXPECTED_TYPES[model]
    assert file_rows(exported) == table_rows(url, model)


# -- local folder ---------------------------------------------------------------------------


def test_local_export_reads_back_equal_with_declared_types(warehouse_url, tmp_path):
    lake = tmp_path / "lake"

    result = export_models(MODELS, str(lake), run_date=RUN_DATE, url=warehouse_url, run_id="r1")

    assert result.rows == {"orders": 4, "customers": 3}
    assert result.files == {
        model: [f"{lake}/{model}/run_date=2026-03-04/{model}-r1.parquet"] for model in MODELS
    }
    for model in MODELS:
        assert_same_as_table(warehouse_url, model, pq.read_table(result.files[model][0]))
    orders = pq.read_table(result.files["orders"][0])
    assert orders.column("order_total")[1].as_py() == Decimal("99999999999999.99")
    assert orders.column("ordered_at")[1].as_py() == datetime(
        2026, 3, 3, 4, 59, 59, 999999, tzinfo=UTC
    )
    assert not orders.schema.field("order_id").nullable  # primary key: NOT NULL kept
    # nothing else was written: no temp files, no metadata folders
    assert sorted(p.relative_to(lake).as_posix() for p in lake.rglob("*") if p.is_file()) == [
        "customers/run_date=2026-03-04/customers-r1.parquet",
        "orders/run_date=2026-03-04/orders-r1.parquet",
    ]


def test_rerun_for_the_same_date_replaces_only_that_partition(warehouse_url, tmp_path):
    lake = tmp_path / "lake"
    other_day = date(2026, 3, 5)
    export_models(["orders"], str(lake), run_date=RUN_DATE, url=warehouse_url, run_id="r1")
    export_models(["orders"], str(lake), run_date=other_day, url=warehouse_url, run_id="r2")
    partition = lake / "orders" / "run_date=2026-03-04"
    (partition / "_orders-r0.parquet.incoming").write_bytes(b"left by a killed export")

    again = export_models(["orders"], f"file://{lake}", run_date=RUN_DATE, url=warehouse_url)
    retried = export_models(["orders"], str(lake), run_date=RUN_DATE, url=warehouse_url)

    assert again.files != retried.files  # each export names its file after its own run id
    assert [p.name for p in partition.iterdir()] == [Path(retried.files["orders"][0]).name]
    dataset = ds.dataset(lake / "orders", format="parquet", partitioning="hive")
    by_date = dataset.to_table().group_by("run_date").aggregate([("order_id", "count")])
    assert sorted(by_date.to_pylist(), key=lambda r: r["run_date"]) == [
        {"run_date": "2026-03-04", "order_id_count": 4},
        {"run_date": "2026-03-05", "order_id_count": 4},
    ]
    for day in ("2026-03-04", "2026-03-05"):
        rows = dataset.to_table(filter=ds.field("run_date") == day).drop_columns(["run_date"])
        assert file_rows(rows) == table_rows(warehouse_url, "orders")  # no duplicates


def test_unknown_model_names_it_and_the_published_models(warehouse_url, tmp_path):
    with pytest.raises(UnknownModelError) as error:
        export_models(["orders", "ordrs", "candidates"], str(tmp_path), url=warehouse_url)

    message = str(error.value)
    assert message.startswith("unknown model(s) ordrs, candidates: not published in schema")
    assert "(did you mean 'orders'?)" in message
    assert "published models: customers, orders." in message
    assert list(tmp_path.iterdir()) == []  # checked before anything was written


def test_unset_optional_location_is_a_clear_error(warehouse_url, monkeypatch):
    monkeypatch.delenv("EXPORT_TEST_NO_LAKE", raising=False)
    with pytest.raises(ExportError, match="EXPORT_TEST_NO_LAKE is not set: nothing to export"):
        export_models(MODELS, "env:EXPORT_TEST_NO_LAKE?", url=warehouse_url)


# -- S3 -------------------------------------------------------------------------------------


def s3_keys(s3, bucket: str) -> list[str]:
    listing = s3.list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def test_s3_export_reads_back_equal_and_reruns_replace(warehouse_url, s3, s3_server, monkeypatch):
    s3.create_bucket(Bucket="lake")
    monkeypatch.setenv("EXPORT_TEST_LAKE", "s3://lake/marts/")

    first = export_models(
        MODELS,
        "env:EXPORT_TEST_LAKE",
        run_date=RUN_DATE,
        url=warehouse_url,
        endpoint_url=s3_server,
        run_id="r1",
    )
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)  # the standard variable works too
    second = export_models(
        MODELS, "s3://lake/marts", run_date=RUN_DATE, url=warehouse_url, run_id="r2"
    )

    assert first.files["orders"] == ["s3://lake/marts/orders/run_date=2026-03-04/orders-r1.parquet"]
    assert second.rows == first.rows == {"orders": 4, "customers": 3}
    assert s3_keys(s3, "lake") == [
        "marts/customers/run_date=2026-03-04/customers-r2.parquet",
        "marts/orders/run_date=2026-03-04/orders-r2.parquet",
    ]
    for model in MODELS:
        key = f"marts/{model}/run_date=2026-03-04/{model}-r2.parquet"
        body = s3.get_object(Bucket="lake", Key=key)["Body"].read()
        assert_same_as_table(warehouse_url, model, pq.read_table(pa.BufferReader(body)))


def test_s3_missing_bucket_is_a_clear_error(warehouse_url, s3, s3_server):
    with pytest.raises(ExportError, match=r"bucket 'no-such-lake' does not exist: create it"):
        export_models(MODELS, "s3://no-such-lake/marts", url=warehouse_url, endpoint_url=s3_server)


def fail_mid_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the Parquet writer fail after it has written part of a file (a full disk, say)."""
    from elt import export

    def write_part_then_fail(out, reader, schema) -> int:
        out.write(b"PAR1" + bytes(1024))
        raise OSError("No space left on device")

    monkeypatch.setattr(export, "_write_batches", write_part_then_fail)


def test_failed_export_leaves_the_previous_files_and_nothing_partial(
    warehouse_url, s3, s3_server, tmp_path, monkeypatch
):
    s3.create_bucket(Bucket="failing-lake")
    targets = (str(tmp_path / "lake"), "s3://failing-lake/marts")
    for target in targets:
        export_models(
            ["orders"],
            target,
            run_date=RUN_DATE,
            url=warehouse_url,
            endpoint_url=s3_server,
            run_id="good",
        )
    fail_mid_write(monkeypatch)

    for target in targets:
        with pytest.raises(ExportError, match=r"analytics\.orders to .* failed: No space left"):
            export_models(
                ["orders"],
                target,
                run_date=RUN_DATE,
                url=warehouse_url,
                endpoint_url=s3_server,
                run_id="bad",
            )

    partition = tmp_path / "lake/orders/run_date=2026-03-04"
    assert [p.name for p in partition.iterdir()] == ["orders-good.parquet"]
    assert s3_keys(s3, "failing-lake") == ["marts/orders/run_date=2026-03-04/orders-good.parquet"]
    assert s3.list_multipart_uploads(Bucket="failing-lake").get("Uploads", []) == []


# -- wired into the run plan and the CLI ----------------------------------------------------


def project(export: dict) -> ProjectConfig:
    return ProjectConfig.model_validate(
        {
            "sources": {
                "shop": {"type": "sql_database", "credentials": "env:X", "tables": {"t": {}}}
            },
            "pipelines": {"daily": {"sources": ["shop"], "export": export}},
        }
    )


def test_export_step_writes_the_run_date_partition(warehouse_url, tmp_path, monkeypatch):
    monkeypatch.setenv("EXPORT_TEST_STEP_LAKE", str(tmp_path / "lake"))
    config = project({"to": "env:EXPORT_TEST_STEP_LAKE", "models": MODELS})
    step = plan(config, "daily").step("export")
    result = RunResult(run_id="daily-20260304T060000-abc123", pipeline="daily")
    interval = (datetime(2026, 3, 4, tzinfo=UTC), datetime(2026, 3, 5, tzinfo=UTC))
    runner = StepRunner(config, config.pipeline("daily"), result, warehouse_url)
    runner.data_interval = interval

    rows, detail = runner.run(step)

    assert rows == 7
    assert detail["run_date"] == "2026-03-04"
    assert detail["rows"] == {"orders": 4, "customers": 3}
    file = tmp_path / "lake/orders/run_date=2026-03-04/orders-daily-20260304T060000-abc123.parquet"
    assert detail["files"]["orders"] == [str(file)]
    assert_same_as_table(warehouse_url, "orders", pq.read_table(file))


def test_export_step_is_skipped_when_an_optional_location_is_unset(warehouse_url, monkeypatch):
    monkeypatch.delenv("EXPORT_TEST_NO_LAKE", raising=False)
    config = project({"to": "env:EXPORT_TEST_NO_LAKE?", "models": MODELS})
    runner = StepRunner(config, config.pipeline("daily"), RunResult("r", "daily"), warehouse_url)

    rows, detail = runner.run(plan(config, "daily").step("export"))

    assert (rows, detail) == (0, {"skipped": "EXPORT_TEST_NO_LAKE is not set: nothing exported"})


CLI_CONFIG = """
sources:
  shop: {type: sql_database, credentials: env:SHOP_DB_URL, tables: {orders: {}}}
pipelines:
  daily:
    sources: [shop]
    export: {to: env:EXPORT_TEST_CLI_LAKE, models: [orders, customers]}
"""


def test_cli_exports_with_the_pipeline_defaults(warehouse_url, tmp_path, monkeypatch):
    from elt.cli import app

    (tmp_path / "pipelines.yml").write_text(CLI_CONFIG)
    monkeypatch.setenv("ELT_CONFIG", str(tmp_path / "pipelines.yml"))
    monkeypatch.setenv("ELT_WAREHOUSE_URL", warehouse_url)
    monkeypatch.setenv("EXPORT_TEST_CLI_LAKE", str(tmp_path / "lake"))
    monkeypatch.setenv("COLUMNS", "250")
    runner = CliRunner()

    done = runner.invoke(app, ["export", "daily", "--run-date", "2026-03-04"])
    one = runner.invoke(app, ["export", "--to", str(tmp_path / "adhoc"), "-m", "customers"])
    unknown = runner.invoke(app, ["export", "daily", "--model", "nope"])
    bad_date = runner.invoke(app, ["export", "daily", "--run-date", "04/03/2026"])

    assert done.exit_code == 0, done.output
    assert re.search(r"│ orders +│ +4 │ \S+/orders-daily-\S+\.parquet", done.output)
    assert re.search(r"│ customers +│ +3 │ \S+/customers-daily-\S+\.parquet", done.output)
    written = sorted(p.parent.name for p in (tmp_path / "lake").rglob("*.parquet"))
    assert written == ["run_date=2026-03-04", "run_date=2026-03-04"]
    assert one.exit_code == 0, one.output
    today = datetime.now(UTC).date().isoformat()
    assert [p.parent.name for p in (tmp_path / "adhoc").rglob("*.parquet")] == [f"run_date={today}"]
    assert unknown.exit_code == 1
    assert "unknown model(s) nope: not published" in unknown.output
    assert bad_date.exit_code == 1
    assert "--run-date must be a date YYYY-MM-DD (got '04/03/2026')" in bad_date.output
