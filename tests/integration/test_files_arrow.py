"""CSV file sets through pyarrow into the warehouse, parsed whole or streamed in blocks.

Shapes the demo's landing zone does not have: two file sets in different folders (one glob
reaching into sub-folders), quoted commas and line breaks, NULL markers, a header-only file,
a file with an extra column, a Parquet file set beside them, and a broken row that must fail
naming the file and line with nothing loaded.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from elt.config import FilesystemSource
from ingestion.runner import IngestError, ingest
from ingestion.sources import csv_arrow
from tests.helpers.warehouse import rows

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def warehouse_url(pg) -> str:
    """An empty warehouse database for this module."""
    return pg.create_database("files_arrow")


@pytest.fixture(params=["whole", "streamed"])
def read_mode(request, monkeypatch, tmp_path) -> str:
    """Files parsed whole, or (a limit of 0 bytes) streamed in 1 KiB blocks."""
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    if request.param == "streamed":
        monkeypatch.setattr(csv_arrow, "MAX_ARROW_BYTES", 0)
        monkeypatch.setattr(csv_arrow, "BLOCK_BYTES", 1024)
    return request.param


def _write(path: Path, text: str, age_s: float = 60) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))


def _source(name: str, folder: Path) -> FilesystemSource:
    return FilesystemSource.model_validate(
        {
            "name": name,
            "type": "filesystem",
            "bucket_url": str(folder),
            "files": {
                "supplies": {"glob": "supplies/**/*.csv", "format": "csv", "primary_key": "id"},
                "returns": {"glob": "inbound/returns_*.csv", "format": "csv"},
                "prices": {"glob": "inbound/*.parquet", "format": "parquet"},
            },
        }
    )


def _landing(folder: Path) -> None:
    many = "".join(f"{n},S{n},{n / 4},\n" for n in range(10, 250))  # several 1 KiB blocks
    _write(
        folder / "supplies" / "north" / "a.csv",
        'id,sku,cost,note\n1,S1,2.5,"with, two, commas"\n2,S2,NA,\n3,S3,,"line\nbreak"\n' + many,
    )
    _write(folder / "supplies" / "south" / "header_only.csv", "id,sku,cost,note\n")
    _write(folder / "supplies" / "south" / "b.csv", "id,sku,cost,note,origin\n4,S4,1,,port\n")
    _write(folder / "inbound" / "returns_1.csv", 'order_id,reason\no1,NULL\no2,"late, cold"\n')
    _write(folder / "inbound" / "ignored.csv", "order_id,reason\nnot,matched\n")
    pq.write_table(
        pa.table({"sku": ["S1", "S2"], "price": [1.5, 2.0]}), folder / "inbound" / "p.parquet"
    )
    os.utime(folder / "inbound" / "p.parquet", (time.time() - 60, time.time() - 60))


def test_two_folders_of_csv_and_parquet_load_every_value(tmp_path, warehouse_url, read_mode):
    name = f"files_{read_mode}"
    _landing(tmp_path / "landing")

    result = ingest(_source(name, tmp_path / "landing"), destination_url=warehouse_url)

    assert result.rows == {"supplies": 244, "returns": 2, "prices": 2}
    assert result.file_formats == {"supplies": "parquet", "returns": "parquet", "prices": "parquet"}
    assert rows(
        warehouse_url,
        f"select id, sku, cost, note, origin from raw_{name}.supplies where id < 5 order by id",
    ) == [
        (1, "S1", 2.5, "with, two, commas", None),
        (2, "S2", None, None, None),
        (3, "S3", None, "line\nbreak", None),
        (4, "S4", 1.0, None, "port"),  # the extra column, NULL for the other files
    ]
    assert rows(
        warehouse_url,
        f"select count(*), count(distinct _dlt_id), sum(cost) from raw_{name}.supplies",
    ) == [(244, 244, 2.5 + 1 + sum(n / 4 for n in range(10, 250)))]
    assert rows(warehouse_url, f"select order_id, reason from raw_{name}.returns order by 1") == [
        ("o1", None),
        ("o2", "late, cold"),
    ]
    assert rows(warehouse_url, f"select sum(price) from raw_{name}.prices") == [(3.5,)]


def test_a_broken_row_fails_naming_file_and_line_and_loads_nothing(
    tmp_path, warehouse_url, read_mode
):
    name = f"broken_{read_mode}"
    folder = tmp_path / "landing"
    good = "".join(f"{n},S{n}\n" for n in range(1, 200))
    _write(folder / "supplies" / "ok.csv", "id,sku\n" + good)
    _write(folder / "supplies" / "bad.csv", "id,sku\n" + good + "200,S200,surplus\n")

    with pytest.raises(IngestError) as failure:
        ingest(_source(name, folder), destination_url=warehouse_url)

    message = str(failure.value)
    assert "\n" not in message
    assert "bad.csv" in message and "line 201" in message and "'supplies'" in message
    assert rows(
        warehouse_url,
        "select count(*) from information_schema.tables where table_schema = %s",
        (f"raw_{name}",),
    ) == [(0,)]
