"""Fixtures of the reliability tests: the demo sources on the test warehouse."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import psycopg2
import pytest

from elt import demo, paths, settings

DEMO_KEYS = ("SHOP_DB_URL", "SOCIAL_API_URL", "SOCIAL_API_TOKEN", "LANDING_URL", "LAKE_URL")


def reset_warehouse(url: str) -> None:
    """Start from an empty warehouse: no raw data, no dlt state, no marts, no run history."""
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            "select nspname from pg_namespace where nspname like 'raw\\_%'"
            " or nspname like 'audit%' or nspname like 'analytics%' or nspname = 'elt_meta'"
        )
        for (schema,) in cur.fetchall():
            cur.execute(f'drop schema "{schema}" cascade')
    shutil.rmtree(paths.state_dir() / "dlt", ignore_errors=True)


def rows(url: str, statement: str) -> list[tuple]:
    """Rows of ``statement`` on the database at ``url``."""
    with psycopg2.connect(url, connect_timeout=5) as conn, conn.cursor() as cur:
        cur.execute(statement)
        return cur.fetchall() if cur.description else []


@pytest.fixture(scope="module", autouse=True)
def _restore_environment() -> Iterator[None]:
    """In-process ingests set tool homes in ``os.environ`` (dlt reads them there); put the
    environment back after each module so later tests see the one they started with."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="module")
def demo_sources(pg) -> Iterator[demo.DemoSummary]:
    """Small demo sources on the test server, their settings in the environment, the demo
    API running; an empty warehouse to start with."""
    reset_warehouse(pg.url())
    summary = demo.prepare(years=0.03, seed=7, admin_url=pg.url())
    saved = {key: os.environ.pop(key, None) for key in DEMO_KEYS}
    settings.load_local_env()
    demo.start_api()
    yield summary
    demo.stop_api()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
