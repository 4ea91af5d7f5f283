"""Published marts are the old version or the new one, never a mix: not to a reader
querying during publish, not after a publish killed half way."""

from __future__ import annotations

import threading
import time

import psycopg2
import pytest

from elt import roles
from elt.publish import publish
from tests.helpers.publishing import start_publish
from tests.helpers.warehouse import rows

pytestmark = pytest.mark.integration

DATABASE = "publish_test"
BIG_ROWS = 200_000
POLL_DEADLINE_S = 60


def _build_audit(url: str, version: int) -> None:
    """Marts of ``version``: every row of every table carries it."""
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        roles.set_local_role(cur, roles.TRANSFORMER)  # dbt builds the marts as the transformer
        cur.execute(
            "drop schema if exists audit cascade; create schema audit;"
            " create table audit.customers (id int primary key, v int);"
            f" insert into audit.customers select g, {version} from generate_series(1, 1000) g;"
            " create table audit.orders (id int primary key, v int, note text);"
            f" insert into audit.orders select g, {version}, repeat('n', 50)"
            f" from generate_series(1, {BIG_ROWS}) g"
        )


def _versions(url: str) -> set[int]:
    return {
        v
        for (v,) in rows(
            url,
            "select distinct v from analytics.customers union select distinct v"
            " from analytics.orders",
        )
    }


@pytest.fixture
def published(pg) -> str:
    """Version 1 published; returns the database URL."""
    url = pg.create_database(DATABASE)
    _build_audit(url, 1)
    publish(url, audit="audit", published="analytics")
    return url


def test_a_publish_killed_half_way_leaves_the_old_marts(published, pg):
    url = published
    _build_audit(url, 2)
    worker, failure = start_publish(url)
    deadline = time.monotonic() + POLL_DEADLINE_S
    killed = []
    while not killed and time.monotonic() < deadline and worker.is_alive():
        killed = rows(
            pg.url(DATABASE),
            "select pg_terminate_backend(pid) from pg_stat_activity where datname ="
            " current_database() and query like 'insert into \"analytics__next\"%'",
        )
        time.sleep(0.01)
    worker.join(timeout=60)
    assert killed == [(True,)], "the publish was not caught in the middle of its copy"
    assert failure and isinstance(failure[0], psycopg2.Error)  # the publish did fail
    assert _versions(url) == {1}
    assert rows(url, "select count(*) from analytics.orders") == [(BIG_ROWS,)]

    publish(url, audit="audit", published="analytics")  # the rerun publishes the new version
    assert _versions(url) == {2}
    assert rows(url, "select count(*) from analytics.orders") == [(BIG_ROWS,)]


def test_readers_during_publishes_see_one_version_at_a_time(published):
    url = published
    seen: list[tuple] = []
    errors: list[str] = []
    done = threading.Event()

    def read() -> None:
        conn = psycopg2.connect(url)
        conn.autocommit = True
        try:
            for _ in range(10_000):  # bounded; stops as soon as the publishes are done
                if done.is_set():
                    return
                try:
                    with conn.cursor() as cur:
                        cur.execute(
                            "select (select array_agg(distinct v) from analytics.customers),"
                            " (select array_agg(distinct v) from analytics.orders)"
                        )
                        seen.append(cur.fetchone())
                except psycopg2.Error as exc:
                    errors.append(type(exc).__name__)
                time.sleep(0.005)
        finally:
            conn.close()

    reader = threading.Thread(target=read)
    reader.start()
    for version in (2, 3):
        _build_audit(url, version)
        publish(url, audit="audit", published="analytics")
    done.set()
    reader.join(timeout=60)

    assert seen, "the reader saw nothing"
    mixed = [snapshot for snapshot in seen if snapshot[0] != snapshot[1] or len(snapshot[0]) != 1]
    assert mixed == []
    assert {snapshot[0][0] for snapshot in seen} <= {1, 2, 3}
    assert _versions(url) == {3}
    # a query that raced the swap may find the old tables gone; it never sees a mix
    assert set(errors) <= {"UndefinedTable", "InternalError_", "UndefinedObject"}, errors


def _wait_for(url: str, statement: str, deadline_s: float = 30) -> list[tuple]:
    """Poll ``statement`` until it returns rows (bounded)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        found = rows(url, statement)
        if found:
            return found
        time.sleep(0.05)
    return []


def _timed_read(url: str) -> float:
    """Seconds a reader's query on the published marts takes (it gives up after 20 s)."""
    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("set statement_timeout = '20s'")
            started = time.monotonic()
            cur.execute("select count(*) from analytics.customers")
            return time.monotonic() - started
    finally:
        conn.close()


PUBLISH_SCRIPT = (
    "import sys; from elt.publish import publish;"
    " publish(sys.argv[1], audit='audit', published='analytics')"
)


def test_a_publish_killed_behind_a_reader_blocks_other_readers_only_seconds(published):
    import os
    import signal
    import subprocess
    import sys

    url = published
    _build_audit(url, 2)
    holder = psycopg2.connect(url)  # a BI session in the middle of a transaction on the marts
    try:
        with holder.cursor() as cur:
            cur.execute("select count(*) from analytics.orders")
        publisher = subprocess.Popen([sys.executable, "-c", PUBLISH_SCRIPT, url])
        waiting = _wait_for(
            url,
            "select pid from pg_stat_activity where wait_event_type = 'Lock'"
            " and query like 'drop schema if exists \"analytics\"%'",
        )
        assert waiting, "the publish never queued for the published tables"
        os.kill(publisher.pid, signal.SIGKILL)
        publisher.wait(timeout=10)

        waited = _timed_read(url)  # the holder still has its transaction open

        assert waited < 5, f"a reader waited {waited:.1f} s behind the dead publish"
        assert _versions(url) == {1}
        gone = _wait_for(
            url,
            f"select 1 where not exists (select from pg_stat_activity where pid = {waiting[0][0]})",
        )
        assert gone, "the dead publish's session is still there"
    finally:
        holder.close()
    publish(url, audit="audit", published="analytics")
    assert _versions(url) == {2}


def test_a_publish_waits_for_a_long_reader_without_blocking_the_others(published):
    url = published
    _build_audit(url, 2)
    holder = psycopg2.connect(url)
    result: list[object] = []
    try:
        with holder.cursor() as cur:
            cur.execute("select count(*) from analytics.orders")
        worker = threading.Thread(
            target=lambda: result.append(publish(url, audit="audit", published="analytics"))
        )
        worker.start()
        assert _wait_for(url, "select 1 from pg_stat_activity where wait_event_type = 'Lock'"), (
            "the publish never queued"
        )
        waits = [_timed_read(url) for _ in range(3)]
        assert max(waits) < 5, waits
        assert _versions(url) == {1}
    finally:
        holder.close()  # the long transaction ends: the next attempt of the swap gets through
    worker.join(timeout=60)
    assert result and _versions(url) == {2}
