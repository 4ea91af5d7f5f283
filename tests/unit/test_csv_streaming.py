"""CSV files larger than the whole-file limit are streamed in blocks (checked, then loaded):
same rows and types as a whole-file read, or the dict path when a block would differ."""

from __future__ import annotations

import pyarrow as pa
import pytest
from dlt.sources.filesystem import filesystem

from ingestion.fast_path import row_ids
from ingestion.sources import csv_arrow
from ingestion.sources.file_errors import MalformedFileError
from ingestion.sources.file_readers import file_reader


def read(folder, glob: str, *, primary_key=(), chunk_rows: int = 1000) -> list:
    listing = filesystem(bucket_url=folder.as_uri(), file_glob=glob)
    return list(listing | file_reader("csv", chunk_rows, table="t", primary_key=primary_key))


@pytest.fixture
def streamed(monkeypatch):
    """Every file streamed, in blocks of 1 KiB (several blocks per test file)."""
    monkeypatch.setattr(csv_arrow, "MAX_ARROW_BYTES", 0)
    monkeypatch.setattr(csv_arrow, "BLOCK_BYTES", 1024)


def _rows(items: list) -> list[dict]:
    assert items and all(isinstance(item, pa.RecordBatch) for item in items)
    rows = [row for item in items for row in item.to_pylist()]
    assert all(row.pop("_dlt_id") for row in rows)
    return rows


def test_a_streamed_file_gives_the_rows_and_types_of_a_whole_read(tmp_path, monkeypatch):
    lines = ["id,sku,note,cost,day"]
    for n in range(1, 301):
        note = (
            f'"a, quoted ""note""\nover two lines {n}"' if n % 7 == 0 else ("" if n % 5 else "NA")
        )
        lines.append(f"{n},S{n},{note},{n / 4},2026-01-{n % 28 + 1:02d}")
    (tmp_path / "big.csv").write_text("\n".join(lines) + "\n")
    whole = _rows(read(tmp_path, "*.csv"))

    monkeypatch.setattr(csv_arrow, "MAX_ARROW_BYTES", 0)
    monkeypatch.setattr(csv_arrow, "BLOCK_BYTES", 1024)
    items = read(tmp_path, "*.csv", chunk_rows=50)
    streamed = _rows(items)

    assert len(items) > 6 and max(item.num_rows for item in items) <= 50
    assert streamed == whole and len(streamed) == 300
    assert streamed[6]["note"] == 'a, quoted "note"\nover two lines 7'
    assert streamed[0]["note"] is None and streamed[0]["day"] == "2026-01-02"  # text, as pandas
    assert items[0].schema.field("cost").type == pa.float64()


def test_a_block_that_does_not_fit_the_first_blocks_types_sends_the_file_to_dicts(
    tmp_path, streamed
):
    lines = ["id,code"] + [f"{n},{n}" for n in range(1, 200)] + ["200,X-200"]
    (tmp_path / "drift.csv").write_text("\n".join(lines) + "\n")

    items = read(tmp_path, "*.csv")

    assert items and all(isinstance(item, dict) for item in items)  # nothing yielded twice
    assert len(items) == 200 and items[-1] == {"id": 200, "code": "X-200"}


def test_a_streamed_file_with_an_empty_key_cell_goes_to_dicts(tmp_path, streamed):
    lines = ["id,name"] + [f"{n},n{n}" for n in range(1, 200)] + [",nameless"]
    (tmp_path / "a.csv").write_text("\n".join(lines) + "\n")

    items = read(tmp_path, "*.csv", primary_key=["id"])

    assert len(items) == 200 and all(isinstance(item, dict) for item in items)


def test_a_bad_row_deep_in_a_streamed_file_names_the_file_and_line(tmp_path, streamed):
    lines = ["id,sku"] + [f"{n},S{n}" for n in range(1, 200)] + ["200,S200,extra"]
    (tmp_path / "bad.csv").write_text("\n".join(lines) + "\n")

    with pytest.raises(Exception) as failure:
        read(tmp_path, "*.csv")

    cause = failure.value.__cause__
    assert isinstance(cause, MalformedFileError)
    assert "bad.csv" in str(cause) and "line 201" in str(cause)


def test_a_header_only_file_loads_nothing_and_a_missing_key_column_is_named(tmp_path, streamed):
    (tmp_path / "empty.csv").write_text("id,sku\n")
    assert read(tmp_path, "empty.csv") == []

    (tmp_path / "keyless.csv").write_text("sku\n" + "S\n" * 300)
    with pytest.raises(Exception, match=r"keyless\.csv: no primary key column\(s\) id"):
        read(tmp_path, "keyless.csv", primary_key=["id"])


def test_row_ids_look_like_dlts_and_do_not_repeat():
    ids = row_ids(50_000).to_pylist()

    assert len(set(ids)) == 50_000
    assert {len(value) for value in ids} == {14}  # 10 random bytes in base64, unpadded
    assert row_ids(0).to_pylist() == []
