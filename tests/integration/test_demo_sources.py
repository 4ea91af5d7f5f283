"""The demo's three real sources: the shop database, the tweets API process, the landing zone."""

from __future__ import annotations

import http.client
import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import psutil
import psycopg2
import pytest

from elt.demo.api import is_running, start_background, stop_background
from elt.demo.background import ApiStartError
from elt.demo.generate import count_rows, generate
from elt.demo.landing import write_landing
from elt.demo.shop import ShopDatabase, ShopLoadError, load_shop

pytestmark = pytest.mark.integration

SHOP_DB = "demo_shop_test"
TOKEN = "integration-token-abc"
SHOP_TABLES = ("customers", "orders", "items", "products", "stores")


def query(url: str, sql: str) -> list[tuple]:
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get_json(port: int, path: str, token: str | None = None) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


@pytest.fixture(scope="module")
def csv_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("demo-data")
    generate(folder, years=0.03, seed=11)
    return folder


@pytest.fixture(scope="module")
def shop(csv_dir: Path, pg) -> Iterator[ShopDatabase]:
    yield load_shop(csv_dir, pg.url(), database=SHOP_DB)
    drop_database(pg, SHOP_DB)


def drop_database(pg, name: str) -> None:
    conn = psycopg2.connect(pg.url())
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(f'drop database if exists "{name}" with (force)')
    finally:
        conn.close()


# --- the shop database ---------------------------------------------------------------------


def test_shop_tables_hold_every_csv_row(shop: ShopDatabase, csv_dir: Path) -> None:
    expected = {table: count_rows(csv_dir / f"{table}.csv") for table in SHOP_TABLES}
    assert expected["orders"] > 100
    assert shop.rows == expected
    for table, rows in expected.items():
        assert query(shop.url, f"select count(*) from {table}") == [(rows,)]


def test_shop_has_its_keys(shop: ShopDatabase, pg) -> None:
    foreign_keys = query(
        pg.url(SHOP_DB),
        """
        select cl.relname, a.attname, rc.relname, ra.attname
        from pg_constraint c
        join pg_class cl on cl.oid = c.conrelid
        join pg_attribute a on a.attrelid = c.conrelid and a.attnum = c.conkey[1]
        join pg_class rc on rc.oid = c.confrelid
        join pg_attribute ra on ra.attrelid = c.confrelid and ra.attnum = c.confkey[1]
        where c.contype = 'f' and c.connamespace = 'public'::regnamespace
        """,
    )
    assert set(foreign_keys) == {
        ("orders", "customer", "customers", "id"),
        ("orders", "store_id", "stores", "id"),
        ("items", "order_id", "orders", "id"),
        ("items", "sku", "products", "sku"),
    }
    primary_keys = query(
        pg.url(SHOP_DB),
        """
        select cl.relname, a.attname from pg_constraint c
        join pg_class cl on cl.oid = c.conrelid
        join pg_attribute a on a.attrelid = c.conrelid and a.attnum = any(c.conkey)
        where c.contype = 'p' and c.connamespace = 'public'::regnamespace
        """,
    )
    assert set(primary_keys) == {
        ("customers", "id"),
        ("orders", "id"),
        ("items", "id"),
        ("products", "sku"),
        ("stores", "id"),
    }


def test_shop_columns_have_the_declared_types(shop: ShopDatabase) -> None:
    columns = {
        (table, column): (data_type, nullable, default)
        for table, column, data_type, nullable, default in query(
            shop.url,
            """
            select table_name, column_name, data_type, is_nullable, column_default
            from information_schema.columns where table_schema = 'public'
            """,
        )
    }
    assert columns["orders", "id"][0] == "text"
    assert columns["orders", "ordered_at"][0] == "timestamp without time zone"
    assert columns["orders", "order_total"][0] == "bigint"
    assert columns["products", "price"][0] == "bigint"
    assert columns["stores", "opened_at"][0] == "timestamp without time zone"
    assert columns["orders", "updated_at"] == ("timestamp with time zone", "NO", "now()")
    assert query(
        shop.url,
        "select numeric_precision, numeric_scale from information_schema.columns"
        " where table_name = 'stores' and column_name = 'tax_rate'",
    ) == [(6, 4)]
    # cents survive the load exactly
    assert query(shop.url, "select count(*) from orders where order_total <> subtotal + tax_paid")[
        0
    ] == (0,)


def test_shop_app_may_read_but_not_write(shop: ShopDatabase, pg) -> None:
    assert shop.url.startswith("postgresql://shop_app:")
    assert pg.password not in shop.url
    assert "shop_app:" not in repr(shop)
    assert query(shop.url, "select current_user") == [("shop_app",)]
    with pytest.raises(psycopg2.errors.InsufficientPrivilege, match="permission denied"):
        query(shop.url, "insert into customers (id, name) values ('x', 'y')")
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        query(shop.url, "create table scratch (id int)")


def test_reloading_recreates_the_shop_and_rotates_the_password(
    shop: ShopDatabase, csv_dir: Path, pg
) -> None:
    query(pg.url(SHOP_DB), "delete from items")  # a change the reload must undo
    reloaded = load_shop(csv_dir, pg.url(), database=SHOP_DB)
    assert reloaded.rows == shop.rows
    assert reloaded.url != shop.url
    assert query(reloaded.url, "select count(*) from items") == [(shop.rows["items"],)]
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        query(shop.url, "select 1")
    object.__setattr__(shop, "url", reloaded.url)  # later tests in this module use it


def test_missing_csv_is_named(tmp_path: Path, pg) -> None:
    with pytest.raises(ShopLoadError, match=r"stores\.csv is missing: generate the demo data"):
        load_shop(tmp_path, pg.url(), database="demo_shop_missing")


# --- the tweets API as a background process ------------------------------------------------


@pytest.fixture
def api_files(tmp_path: Path, csv_dir: Path) -> Iterator[dict]:
    token_file = tmp_path / "api_token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    files = {
        "tweets_csv": csv_dir / "tweets.csv",
        "token_file": token_file,
        "port": free_port(),
        "log_file": tmp_path / "api.log",
        "pid_file": tmp_path / "api.pid",
    }
    yield files
    stop_background(files["pid_file"])


def test_background_api_starts_once_and_stops_by_pid(api_files: dict, csv_dir: Path) -> None:
    pid = start_background(**api_files)
    port, pid_file = api_files["port"], api_files["pid_file"]
    assert pid_file.read_text().strip() == str(pid)
    assert is_running(pid_file, port)
    status, body = get_json(port, "/tweets?page_size=1000", TOKEN)
    assert status == 200
    assert body["total"] == count_rows(csv_dir / "tweets.csv")
    assert get_json(port, "/tweets")[0] == 401

    assert start_background(**api_files) == pid  # already running and healthy

    assert stop_background(pid_file) is True
    assert not psutil.pid_exists(pid)
    assert not pid_file.exists()
    assert not is_running(pid_file, port)
    assert stop_background(pid_file) is False
    assert TOKEN not in api_files["log_file"].read_text()


def test_stale_pid_files_are_replaced_and_their_processes_left_alone(api_files: dict) -> None:
    pid_file = api_files["pid_file"]
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid_file.write_text(finished.stdout)  # a process that no longer exists
    assert not is_running(pid_file, api_files["port"])
    first = start_background(**api_files)
    assert pid_file.read_text().strip() == str(first)
    assert stop_background(pid_file)

    pid_file.write_text(f"{os.getpid()}\n")  # alive, but not the API (a reused pid)
    second = start_background(**api_files)
    assert second != os.getpid()
    assert pid_file.read_text().strip() == str(second)
    assert psutil.Process(os.getpid()).is_running()
    assert stop_background(pid_file)


def test_failed_start_reports_the_log_and_leaves_no_pid_file(api_files: dict) -> None:
    api_files["token_file"].chmod(0o644)
    with pytest.raises(ApiStartError, match="exited with code 2") as failure:
        start_background(**api_files)
    assert "chmod 600" in str(failure.value)
    assert TOKEN not in str(failure.value)
    assert not api_files["pid_file"].exists()


# --- the landing zone ----------------------------------------------------------------------


def test_landing_in_a_local_folder(csv_dir: Path, tmp_path: Path) -> None:
    written = write_landing(csv_dir, str(tmp_path / "landing"), day=date(2026, 3, 4))
    target = tmp_path / "landing" / "supplies" / "supplies_20260304.csv"
    assert written == [target.as_uri()]
    assert target.read_bytes() == (csv_dir / "supplies.csv").read_bytes()
    # a file:// URL works the same, and writing again replaces the day's file
    assert write_landing(csv_dir, (tmp_path / "landing").as_uri(), day=date(2026, 3, 4)) == written
    assert sorted(p.name for p in target.parent.iterdir()) == ["supplies_20260304.csv"]


def test_landing_on_s3(csv_dir: Path, s3_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    url = "s3://demo-landing/zone"
    written = write_landing(csv_dir, url, endpoint_url=s3_server, day=date(2026, 3, 4))
    assert written == ["s3://demo-landing/zone/supplies/supplies_20260304.csv"]
    assert write_landing(csv_dir, url, endpoint_url=s3_server, day=date(2026, 3, 4)) == written
    s3 = boto3.client("s3", endpoint_url=s3_server)
    body = s3.get_object(Bucket="demo-landing", Key="zone/supplies/supplies_20260304.csv")["Body"]
    assert body.read() == (csv_dir / "supplies.csv").read_bytes()
    listed = s3.list_objects_v2(Bucket="demo-landing")["Contents"]
    assert [item["Key"] for item in listed] == ["zone/supplies/supplies_20260304.csv"]


# --- prepare(): everything wired together --------------------------------------------------


def read_env(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key: value for key, value in pairs if not key.startswith("#")}


def test_prepare_declares_the_sources_and_serves_the_api(
    pg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import elt.demo as demo

    monkeypatch.setenv("ELT_HOME", str(tmp_path / "state"))
    try:
        summary = demo.prepare(
            years=0.02, seed=3, admin_url=pg.url(), shop_database="demo_shop_prepare"
        )
        state = tmp_path / "state"
        assert summary.generated
        assert summary.data_dir == state / "demo" / "data"
        assert {t: summary.rows[t] for t in SHOP_TABLES} == summary.shop_rows
        env_file = state / "env"
        env = read_env(env_file)
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
        token_file = state / "demo" / "api_token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert env["SOCIAL_API_TOKEN"] == token_file.read_text().strip()
        port = int((state / "demo" / "api_port").read_text())
        assert env["SOCIAL_API_URL"] == summary.api_url == f"http://127.0.0.1:{port}"
        assert env["LANDING_URL"] == (state / "landing").as_uri()
        assert len(summary.landing_objects) == 1
        assert query(env["SHOP_DB_URL"], "select count(*) from orders") == [
            (summary.rows["orders"],)
        ]
        assert env["SOCIAL_API_TOKEN"] not in repr(summary)

        again = demo.prepare(
            years=0.02, seed=3, admin_url=pg.url(), shop_database="demo_shop_prepare"
        )
        assert not again.generated
        assert again.rows == summary.rows
        env_again = read_env(env_file)
        assert env_again["SOCIAL_API_TOKEN"] == env["SOCIAL_API_TOKEN"]
        assert env_again["SOCIAL_API_URL"] == env["SOCIAL_API_URL"]

        pid = demo.start_api()
        assert demo.api_running()
        assert demo.start_api() == pid
        status, body = get_json(port, "/tweets?page_size=1000", env["SOCIAL_API_TOKEN"])
        assert (status, body["total"]) == (200, summary.rows["tweets"])
        assert demo.stop_api() is True
        assert not demo.api_running()
    finally:
        demo.stop_api()
        drop_database(pg, "demo_shop_prepare")
