"""Bad input: broken files, NULL and duplicate keys, schema drift, huge fields and hostile
names in pipelines.yml. Each gives a clear error (naming file, table, column) or a defined
outcome, and a fixed input then loads exactly."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from elt.config import FilesystemSource
from ingestion.runner import IngestError, ingest
from tests.helpers.warehouse import rows

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def warehouse_url(pg) -> str:
    """An empty warehouse database for this module."""
    return pg.create_database("bad_input_warehouse")


@pytest.fixture(autouse=True)
def dlt_home(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))


def _drop(folder: Path, name: str, content: bytes, age_s: float = 0) -> Path:
    """Write a landing file, ``age_s`` seconds old (later files must look newer)."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))
    return path


def _source(name: str, folder: Path, contract: str = "evolve") -> FilesystemSource:
    return FilesystemSource.model_validate(
        {
            "name": name,
            "type": "filesystem",
            "contract": contract,
            "bucket_url": str(folder),
            "files": {"supplies": {"glob": "*.csv", "format": "csv", "primary_key": ["id"]}},
        }
    )


def _table_exists(url: str, schema: str) -> bool:
    found = rows(
        url,
        "select count(*) from information_schema.tables"
        f" where table_schema = '{schema}' and table_name = 'supplies'",
    )
    return found == [(1,)]


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("nonutf8", b"id,name\n1,caf\xe9\n2,ok\n", "'utf-8' codec can't decode byte 0xe9"),
        ("emptyfile", b"", "No columns to parse from file"),
        ("extracell", b"id,name\n1,a\n2,b,oops\n", "line 3"),
    ],
)
def test_a_broken_file_is_named_nothing_loads_and_the_fixed_file_loads(
    tmp_path, warehouse_url, name, content, problem
):
    folder = tmp_path / "landing"
    broken = _drop(folder, "broken.csv", content, age_s=60)
    with pytest.raises(IngestError) as failure:
        ingest(_source(name, folder), destination_url=warehouse_url)
    message = str(failure.value)
    assert f"source '{name}'" in message and "'supplies'" in message
    assert "malformed file" in message and "broken.csv" in message and problem in message
    assert not _table_exists(warehouse_url, f"raw_{name}")

    broken.write_bytes(b"id,name\n1,a\n2,b\n")  # the supplier fixes the file
    ingest(_source(name, folder), destination_url=warehouse_url)
    assert rows(warehouse_url, f"select id, name from raw_{name}.supplies order by id") == [
        (1, "a"),
        (2, "b"),
    ]


def test_a_null_key_names_table_and_column_and_loads_nothing(tmp_path, warehouse_url):
    folder = tmp_path / "landing"
    _drop(folder, "a.csv", b"id,name\n1,a\n,b\n")
    with pytest.raises(IngestError) as failure:
        ingest(_source("nullkey", folder), destination_url=warehouse_url)
    message = str(failure.value)
    assert "source 'nullkey'" in message
    assert "Cannot coerce NULL in table `supplies` column `id`" in message
    assert not _table_exists(warehouse_url, "raw_nullkey")


def test_duplicate_keys_in_one_load_give_one_row_per_key(tmp_path, warehouse_url):
    folder = tmp_path / "landing"
    _drop(folder, "a.csv", b"id,name\n1,a\n1,a-again\n2,b\n")
    ingest(_source("dupkey", folder), destination_url=warehouse_url)
    assert rows(warehouse_url, "select count(*), count(distinct id) from raw_dupkey.supplies") == [
        (2, 2)
    ]


def test_schema_drift_new_dropped_and_retyped_columns_keep_every_value(tmp_path, warehouse_url):
    folder = tmp_path / "landing"
    source = _source("drift", folder)
    batches = [
        b"id,cost,name\n1,2.5,a\n",
        b"id,cost,name,extra\n2,3.5,b,new\n",  # an unexpected new column
        b"id,name\n3,c\n",  # a dropped column
        b"id,cost,name\n4,abc,d\n",  # a wrong type: kept aside in a variant column
        b"id,name\n",  # an empty file (header only): nothing to load
    ]
    for number, content in enumerate(batches):
        _drop(folder, f"{number}.csv", content, age_s=100 - number * 10)
        ingest(source, destination_url=warehouse_url)
    assert rows(
        warehouse_url,
        "select id, cost, name, extra, cost__v_text from raw_drift.supplies order by id",
    ) == [
        (1, 2.5, "a", None, None),
        (2, 3.5, "b", "new", None),
        (3, None, "c", None, None),
        (4, None, "d", None, "abc"),
    ]


def test_a_frozen_contract_refuses_a_new_column_by_name(tmp_path, warehouse_url):
    folder = tmp_path / "landing"
    source = _source("frozen", folder, contract="freeze")
    _drop(folder, "a.csv", b"id,name\n1,a\n", age_s=60)
    ingest(source, destination_url=warehouse_url)
    _drop(folder, "b.csv", b"id,name,surprise\n2,b,x\n")
    with pytest.raises(IngestError) as failure:
        ingest(source, destination_url=warehouse_url)
    assert "surprise" in str(failure.value) and "supplies" in str(failure.value)
    assert rows(warehouse_url, "select id from raw_frozen.supplies") == [(1,)]


def test_a_huge_field_loads_intact(tmp_path, warehouse_url):
    folder = tmp_path / "landing"
    huge = "y" * 5_000_000
    _drop(folder, "a.csv", f"id,name\n1,{huge}\n2,small\n".encode())
    ingest(_source("huge", folder), destination_url=warehouse_url)
    assert rows(
        warehouse_url,
        "select id, length(name), encode(sha256(convert_to(name, 'UTF8')), 'hex')"
        " from raw_huge.supplies order by id",
    ) == [
        (1, len(huge), hashlib.sha256(huge.encode()).hexdigest()),
        (2, 5, hashlib.sha256(b"small").hexdigest()),
    ]


HOSTILE_CONFIG = """\
version: 1
sources:
  shop:
    type: sql_database
    credentials: env:HOSTILE_SHOP_URL
    tables:
      'orders"; drop table customers; --': {primary_key: id}
pipelines:
  p:
    sources: [shop]
    quality:
      rules:
        - {type: not_null, table: "orders; drop schema analytics", column: id}
        - {type: unique, table: orders, column: 'id" from x; --'}
"""


def test_sql_injection_names_in_pipelines_yml_are_rejected(tmp_path):
    config = tmp_path / "pipelines.yml"
    config.write_text(HOSTILE_CONFIG)
    env = {**os.environ, "ELT_CONFIG": str(config), "HOSTILE_SHOP_URL": "postgresql://u:p@h/d"}
    result = subprocess.run(
        [sys.executable, "-m", "elt.cli", "validate-config"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 2
    out = result.stdout + result.stderr
    assert (
        'pipelines.yml:7: sources.shop.tables.orders"; drop table customers; --: '
        "'orders\"; drop table customers; --' is not a valid name"
    ) in out
    assert (
        "pipelines.yml:13: pipelines.p.quality.rules[0].table: "
        "'orders; drop schema analytics' is not a valid SQL identifier"
    ) in out
    assert (
        "pipelines.yml:14: pipelines.p.quality.rules[1].column: "
        "'id\" from x; --' is not a valid SQL identifier"
    ) in out
    assert "3 problem(s) found" in out
