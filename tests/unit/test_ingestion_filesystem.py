"""filesystem config → dlt listings + readers; the readers run on real local files."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dlt.sources.filesystem import filesystem

from elt import paths
from elt.config import FilesystemSource
from ingestion.sources import build_source
from ingestion.sources.file_readers import MalformedFileError, file_reader
from ingestion.sources.filesystem import bucket_url_of, s3_credentials


def landing(bucket_url: str = "landing", **overrides) -> FilesystemSource:
    spec = {
        "name": "landing",
        "type": "filesystem",
        "bucket_url": bucket_url,
        "files": {
            "supplies": {"glob": "supplies/*.csv", "format": "csv", "primary_key": ["id", "sku"]},
            "events": {"glob": "events/*.jsonl", "format": "jsonl"},
        },
    }
    spec.update(overrides)
    return FilesystemSource.model_validate(spec)


def read(folder, glob: str, file_format: str) -> list:
    """Rows the reader yields for the files matching ``glob`` (no pipeline needed)."""
    listing = filesystem(bucket_url=folder.as_uri(), file_glob=glob)
    return list(listing | file_reader(file_format, chunk_rows=2))


def test_file_sets_become_resources_with_keys_and_dispositions():
    source = build_source(landing("/srv/landing")).source

    assert set(source.selected_resources) == {"supplies", "events"}
    supplies = source.resources["supplies"].compute_table_schema()
    assert supplies["write_disposition"] == "merge"
    assert {n for n, c in supplies["columns"].items() if c.get("primary_key")} == {"id", "sku"}
    events = source.resources["events"].compute_table_schema()
    assert events["write_disposition"] == "append"


def test_bucket_urls_local_paths_become_absolute_file_urls(monkeypatch, tmp_path):
    assert bucket_url_of(landing("landing")) == (paths.project_root() / "landing").as_uri()
    assert bucket_url_of(landing(str(tmp_path))) == tmp_path.as_uri()
    assert bucket_url_of(landing("s3://bucket/landing")) == "s3://bucket/landing"
    monkeypatch.setenv("UNIT_LANDING", "s3://other/drop")
    assert bucket_url_of(landing("env:UNIT_LANDING")) == "s3://other/drop"


def test_s3_credentials_come_from_aws_variables_and_the_endpoint(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAUNITTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "unit-secret-key")
    monkeypatch.setenv("UNIT_S3_ENDPOINT", "http://127.0.0.1:9")
    config = landing("s3://bucket/landing", endpoint_url="env:UNIT_S3_ENDPOINT")

    credentials = s3_credentials(config, "s3://bucket/landing")

    assert credentials.aws_access_key_id == "AKIAUNITTEST"
    assert credentials.aws_secret_access_key == "unit-secret-key"
    assert credentials.endpoint_url == "http://127.0.0.1:9"
    assert build_source(config).secrets == ["unit-secret-key"]
    assert s3_credentials(landing("/srv/landing"), "file:///srv/landing") is None


def test_csv_and_parquet_file_sets_load_as_parquet_jsonl_as_dicts():
    assert build_source(landing("/x")).loader_file_format is None  # csv + jsonl
    only_parquet = landing("/x", files={"t": {"glob": "*.parquet", "format": "parquet"}})
    assert build_source(only_parquet).loader_file_format == "parquet"
    csv_and_parquet = landing(
        "/x",
        files={
            "t": {"glob": "*.parquet", "format": "parquet"},
            "u": {"glob": "*.csv", "format": "csv"},
        },
    )
    assert build_source(csv_and_parquet).loader_file_format == "parquet"


def test_csv_reader_yields_arrow_batches_with_nulls_row_ids_and_pandas_types(tmp_path):
    (tmp_path / "a.csv").write_text(
        "id,sku,cost,fresh,day\n1,A1,2.5,True,2026-01-02\n2,,,False,NA\n3,A3,1,true,\n"
    )

    batches = read(tmp_path, "*.csv", "csv")

    assert all(isinstance(batch, pa.RecordBatch) for batch in batches)
    assert [batch.num_rows for batch in batches] == [2, 1]  # chunk_rows=2
    rows = [row for batch in batches for row in batch.to_pylist()]
    assert len({row.pop("_dlt_id") for row in rows}) == 3
    # as pandas reads them: empty cells NULL, True/False booleans, dates left as text
    assert rows == [
        {"id": 1, "sku": "A1", "cost": 2.5, "fresh": True, "day": "2026-01-02"},
        {"id": 2, "sku": None, "cost": None, "fresh": False, "day": None},
        {"id": 3, "sku": "A3", "cost": 1.0, "fresh": True, "day": None},
    ]


def test_csv_files_the_fast_path_would_change_are_read_as_dicts(tmp_path):
    (tmp_path / "a.csv").write_bytes(b"id,name\n,a\n2,b\n")  # an empty primary key
    listing = filesystem(bucket_url=tmp_path.as_uri(), file_glob="*.csv")
    reader = file_reader("csv", table="t", primary_key=["id"])

    items = list(listing | reader)

    assert items and all(isinstance(item, dict) for item in items)


def test_a_csv_file_without_its_key_column_is_named_with_its_header(tmp_path):
    (tmp_path / "a.csv").write_bytes(b"name\na\n")
    listing = filesystem(bucket_url=tmp_path.as_uri(), file_glob="*.csv")
    reader = file_reader("csv", table="t", primary_key=["id"])

    with pytest.raises(Exception, match=r"a\.csv: no primary key column\(s\) id \(header: name\)"):
        list(listing | reader)


def test_a_csv_file_whose_types_differ_from_an_earlier_file_is_read_as_dicts(tmp_path):
    (tmp_path / "a.csv").write_text("id,cost\n1,2.5\n")
    (tmp_path / "b.csv").write_text("id,cost\n2,abc\n")

    items = read(tmp_path, "*.csv", "csv")

    assert isinstance(items[0], pa.RecordBatch)
    assert items[1:] == [{"id": 2, "cost": "abc"}]


def test_malformed_csv_names_the_file_and_line(tmp_path):
    (tmp_path / "bad.csv").write_text("id,sku\n1,A1\n2,A2,extra\n")

    with pytest.raises(Exception) as failure:
        read(tmp_path, "*.csv", "csv")

    cause = failure.value.__cause__
    assert isinstance(cause, MalformedFileError)
    assert cause.file_url.endswith("bad.csv")
    assert "line 3" in str(cause)


def test_jsonl_reader_skips_blank_lines_and_names_a_bad_line(tmp_path):
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps({"id": i}) for i in range(3)) + "\n\n")
    assert read(tmp_path, "*.jsonl", "jsonl") == [{"id": 0}, {"id": 1}, {"id": 2}]

    (tmp_path / "b.jsonl").write_text('{"id": 1}\n{"id": \n')
    with pytest.raises(Exception) as failure:
        read(tmp_path, "b.jsonl", "jsonl")
    assert isinstance(failure.value.__cause__, MalformedFileError)
    assert "b.jsonl: line 2" in str(failure.value.__cause__)


def test_parquet_reader_yields_arrow_batches(tmp_path):
    pq.write_table(pa.table({"id": [1, 2, 3], "name": ["a", "b", "c"]}), tmp_path / "t.parquet")

    batches = read(tmp_path, "*.parquet", "parquet")

    assert [batch.num_rows for batch in batches] == [2, 1]
    assert pa.Table.from_batches(batches).column("name").to_pylist() == ["a", "b", "c"]
