"""sql_database config → dlt sql_table resources (no database needed: reflection is deferred)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from elt.config import MissingEnvError, SqlDatabaseSource
from ingestion.sources import build_source
from ingestion.sources.sql_database import backend_kwargs, table_incremental

# nothing listens on port 9: building the source must not connect
URL = "postgresql://reader:s3cr%40t-pw@127.0.0.1:9/shop"


@pytest.fixture(autouse=True)
def _shop_url(monkeypatch):
    monkeypatch.setenv("UNIT_SHOP_URL", URL)


def shop(**overrides) -> SqlDatabaseSource:
    spec = {
        "name": "shop",
        "type": "sql_database",
        "credentials": "env:UNIT_SHOP_URL",
        "schema": "public",
        "tables": {
            "orders": {"primary_key": "id", "cursor": "ordered_at", "lookback": "3d"},
            "customers": {"primary_key": ["id", "region"]},
            "events": {"write_disposition": "append", "cursor": "seen_at"},
            "stores": {},
        },
    }
    spec.update(overrides)
    return SqlDatabaseSource.model_validate(spec)


def test_one_resource_per_table_with_keys_and_dispositions():
    built = build_source(shop())
    source = built.source

    assert source.name == "shop"
    assert list(source.resources) == ["orders", "customers", "events", "stores"]
    schemas = {name: r.compute_table_schema() for name, r in source.resources.items()}
    assert schemas["orders"]["write_disposition"] == "merge"
    assert schemas["orders"]["columns"]["id"]["primary_key"] is True
    assert schemas["customers"]["write_disposition"] == "merge"
    assert {
        name for name, col in schemas["customers"]["columns"].items() if col.get("primary_key")
    } == {"id", "region"}
    assert schemas["events"]["write_disposition"] == "append"
    assert schemas["stores"]["write_disposition"] == "replace"


def test_arrow_backends_load_parquet_and_connectorx_streams_chunks():
    adbc = shop(chunk_size=5000)  # the default: ADBC, with ConnectorX where it falls back
    assert build_source(adbc).loader_file_format == "parquet"
    assert backend_kwargs(adbc) == {"return_type": "arrow_stream", "batch_size": 5000}
    connectorx = shop(chunk_size=5000, backend="connectorx")
    assert build_source(connectorx).loader_file_format == "parquet"
    assert backend_kwargs(connectorx) == {"return_type": "arrow_stream", "batch_size": 5000}
    assert build_source(shop(backend="pyarrow")).loader_file_format == "parquet"
    assert backend_kwargs(shop(backend="pyarrow")) is None
    assert build_source(shop(backend="sqlalchemy")).loader_file_format is None


def test_schema_contract_governs_columns_and_types_not_new_tables():
    frozen = build_source(shop(contract="freeze")).source.schema_contract
    assert frozen == {"tables": "evolve", "columns": "freeze", "data_type": "freeze"}
    default = build_source(shop()).source.schema_contract
    assert default == {"tables": "evolve", "columns": "evolve", "data_type": "evolve"}


def test_incremental_cursor_uses_the_lookback_as_lag():
    orders = shop().tables["orders"]
    incremental = table_incremental(orders)

    assert incremental.cursor_path == "ordered_at"
    assert incremental.lag == timedelta(days=3).total_seconds()
    assert incremental.initial_value is None
    assert incremental.end_value is None
    # merge tables re-read rows without a cursor value; merge keeps them unique
    assert incremental.on_cursor_value_missing == "include"
    assert table_incremental(shop().tables["events"]).on_cursor_value_missing == "raise"
    assert table_incremental(shop().tables["events"]).lag is None
    assert table_incremental(shop().tables["customers"]) is None


def test_data_interval_becomes_a_window_starting_one_lookback_early():
    start = datetime(2026, 3, 1, tzinfo=UTC)
    end = datetime(2026, 3, 2, tzinfo=UTC)

    incremental = table_incremental(shop().tables["orders"], (start, end))

    assert incremental.initial_value == datetime(2026, 2, 26, tzinfo=UTC)
    assert incremental.end_value == end
    assert incremental.range_end == "open"


def test_the_source_password_is_listed_for_scrubbing():
    assert "s3cr@t-pw" in build_source(shop()).secrets


def test_a_missing_credentials_variable_names_it(monkeypatch):
    monkeypatch.delenv("UNIT_SHOP_URL")
    with pytest.raises(MissingEnvError, match="UNIT_SHOP_URL"):
        build_source(shop())
