"""Export naming, locations and Arrow types: the parts that need no warehouse or bucket."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pyarrow as pa
import pytest

from elt import paths
from elt.export import (
    Column,
    ExportError,
    arrow_schema,
    export_file_name,
    partition_path,
    resolve_location,
    run_date_for,
)


@pytest.mark.parametrize(
    ("root", "expected"),
    [
        ("s3://lake/marts", "s3://lake/marts/orders/run_date=2026-03-04"),
        ("s3://lake/marts/", "s3://lake/marts/orders/run_date=2026-03-04"),
        ("/data/lake", "/data/lake/orders/run_date=2026-03-04"),
        ("lake/marts", "lake/marts/orders/run_date=2026-03-04"),
    ],
)
def test_partition_path_is_hive_style_per_run_date(root: str, expected: str) -> None:
    assert partition_path(root, "orders", date(2026, 3, 4)) == expected


def test_file_name_carries_the_run_id_made_safe_for_object_keys() -> None:
    run_id = "jaffle_daily-20260304T060000-a1b2c3"
    assert export_file_name("orders", run_id) == f"orders-{run_id}.parquet"
    assert export_file_name("orders", "manual run/2026:03") == "orders-manual_run_2026_03.parquet"


def test_run_date_is_the_data_interval_start_in_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    start = datetime(2026, 3, 4, 1, 0, tzinfo=plus_two)  # 2026-03-03 23:00 UTC
    assert run_date_for((start, start + timedelta(days=1))) == date(2026, 3, 3)
    naive = datetime(2026, 3, 4, 23, 0)
    assert run_date_for((naive, naive)) == date(2026, 3, 4)
    assert run_date_for(None) == datetime.now(UTC).date()


def test_locations_resolve_env_references_and_relative_paths(monkeypatch) -> None:
    monkeypatch.setenv("TEST_LAKE", "s3://lake/marts/")
    monkeypatch.delenv("TEST_NO_LAKE", raising=False)
    assert resolve_location("env:TEST_LAKE") == "s3://lake/marts"
    assert resolve_location("file:///data/lake") == "file:///data/lake"
    assert resolve_location("/data/lake/") == "/data/lake"
    assert resolve_location("lake") == str(paths.project_root() / "lake")
    with pytest.raises(ExportError, match="TEST_NO_LAKE is not set: nothing to export to"):
        resolve_location("env:TEST_NO_LAKE?")
    with pytest.raises(KeyError, match="environment variable TEST_NO_LAKE is not set"):
        resolve_location("env:TEST_NO_LAKE")
    with pytest.raises(ExportError, match="cannot export to gs:// locations"):
        resolve_location("gs://lake/marts")


def test_arrow_schema_follows_the_declared_postgres_types() -> None:
    columns = [
        Column("order_id", "text", nullable=False),
        Column("order_total", "numeric", 16, 2),
        Column("tax_rate", "numeric", 6, 4),
        Column("huge", "numeric", 50, 5),
        Column("free", "numeric", None, None),
        Column("quantity", "integer"),
        Column("ordered_at", "timestamp with time zone"),
        Column("local_at", "timestamp without time zone"),
        Column("payload", "jsonb"),
    ]
    # what ConnectorX reports for these columns
    read = pa.schema(
        [
            ("order_id", pa.string()),
            ("order_total", pa.decimal128(38, 10)),
            ("tax_rate", pa.decimal128(38, 10)),
            ("huge", pa.decimal128(38, 10)),
            ("free", pa.decimal128(38, 10)),
            ("quantity", pa.int64()),
            ("ordered_at", pa.timestamp("us", tz="+00:00")),
            ("local_at", pa.timestamp("us")),
            ("payload", pa.string()),
        ]
    )

    schema = arrow_schema(columns, read)

    assert [(f.name, str(f.type), f.nullable) for f in schema] == [
        ("order_id", "string", False),
        ("order_total", "decimal128(16, 2)", True),
        ("tax_rate", "decimal128(6, 4)", True),
        ("huge", "decimal256(50, 5)", True),
        ("free", "decimal128(38, 10)", True),
        ("quantity", "int32", True),
        ("ordered_at", "timestamp[us, tz=UTC]", True),
        ("local_at", "timestamp[us]", True),
        ("payload", "string", True),
    ]


NO_EXPORT_CONFIG = """
sources:
  shop: {type: sql_database, credentials: env:SHOP_DB_URL, tables: {orders: {}}}
pipelines:
  daily: {sources: [shop]}
  nightly: {sources: [shop], export: {to: /data/lake, models: [orders, customers]}}
"""


def test_export_settings_complete_or_replace_the_export_block(
    tmp_path, monkeypatch, capsys
) -> None:
    import typer

    from elt.cli import _export_settings

    (tmp_path / "pipelines.yml").write_text(NO_EXPORT_CONFIG)
    monkeypatch.setenv("ELT_CONFIG", str(tmp_path / "pipelines.yml"))

    assert _export_settings("daily", "/adhoc", ["orders"]) == ("/adhoc", ["orders"], "daily")
    assert _export_settings("nightly", None, ["orders"]) == ("/data/lake", ["orders"], "nightly")
    assert _export_settings(None, None, None) == (
        "/data/lake",
        ["orders", "customers"],
        "nightly",
    )
    with pytest.raises(typer.Exit) as missing:
        _export_settings("daily", "/adhoc", None)
    assert missing.value.exit_code == 1
    assert "pipeline 'daily' has no export: block" in capsys.readouterr().err
