"""What the Airflow, Prefect and parity tests share: an isolated run environment on the demo
sources, a webhook for alerts, and the Airflow testing helper in a subprocess.

    with isolated_env(pg, home, warehouse_db="x_wh", shop_db="x_shop", config=doc) as env:
        ...   # ELT_HOME, ELT_WAREHOUSE_URL, ELT_CONFIG, demo sources, ALERT_URL set

Each test module gets its own state folder, warehouse database and shop database, so the
modules neither see nor disturb each other's data.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import yaml

from elt import paths, settings
from tests.helpers.warehouse import rows
from tests.helpers.webhook import Webhook

DEMO_YEARS = 0.03
DEMO_SEED = 7
AIRFLOW_RUN_TIMEOUT_S = 900
AIRFLOW_TESTING = "orchestration.airflow.testing"
ALERT_EVERYTHING = ["failure", "quality_warning", "success", "limit_exceeded"]


def query(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    """:func:`tests.helpers.warehouse.rows`, always with parameters (so ``%`` is written
    ``%%`` in ``sql``)."""
    return rows(url, sql, params)


def project_document() -> dict:
    """The project's ``pipelines.yml`` as a dict, to derive a test config from."""
    return yaml.safe_load(paths.config_file().read_text())


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines of an env file (the demo's source settings)."""
    values = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            values[key] = value
    return values


@dataclass
class OrchestrationEnv:
    """What :func:`isolated_env` set up."""

    home: Path
    warehouse_url: str
    shop_url: str  # the admin's: the demo's own role may only read
    config_file: Path
    webhook: Webhook
    secrets: list[str]


@contextmanager
def isolated_env(
    pg,
    home: Path,
    *,
    warehouse_db: str,
    shop_db: str,
    config: dict,
    extra_env: dict[str, str] | None = None,
) -> Iterator[OrchestrationEnv]:
    """A state folder, an empty warehouse database, the demo sources in their own shop
    database, their settings in the environment, the demo API and a webhook (``ALERT_URL``).

    The environment is restored afterwards.
    """
    saved_environ = dict(os.environ)
    # tool homes an earlier in-process run left in the environment would win over the new
    # ELT_HOME (settings.tool_homes keeps what is set): every tool starts under `home`
    for key in TOOL_HOMES:
        os.environ.pop(key, None)
    warehouse_url = pg.create_database(warehouse_db)
    config_file = home / "pipelines.yml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    os.environ.update(
        {
            "ELT_HOME": str(home),
            "ELT_WAREHOUSE_URL": warehouse_url,
            "ELT_CONFIG": str(config_file),
            **(extra_env or {}),
        }
    )
    os.environ.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", None)
    from elt import demo

    webhook = Webhook()
    try:
        demo.prepare(years=DEMO_YEARS, seed=DEMO_SEED, admin_url=pg.url(), shop_database=shop_db)
        sources = read_env_file(home / "env")
        os.environ.update(sources)
        os.environ["ALERT_URL"] = webhook.apprise_url
        demo.start_api()
        yield OrchestrationEnv(
            home=home,
            warehouse_url=warehouse_url,
            shop_url=pg.url(shop_db),
            config_file=config_file,
            webhook=webhook,
            secrets=[pg.password, sources["SOCIAL_API_TOKEN"]],
        )
    finally:
        demo.stop_api()
        webhook.close()
        os.environ.clear()
        os.environ.update(saved_environ)


TOOL_HOMES = tuple(settings.STATE_FOLDERS)


def airflow(*args: str, env: dict[str, str] | None = None, module: str = AIRFLOW_TESTING) -> dict:
    """Run ``python -m <module> <args>`` (default: Airflow's testing helper) so Airflow stays
    out of this process; its last output line is JSON. Every output goes to
    ``$ELT_HOME/airflow-subprocess.log`` (tests check it for secrets)."""
    completed = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=paths.project_root(),
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=AIRFLOW_RUN_TIMEOUT_S,
        check=False,
    )
    log = Path(os.environ["ELT_HOME"]) / "airflow-subprocess.log"
    with log.open("a") as out:
        out.write(completed.stdout + completed.stderr)
    lines = completed.stdout.strip().splitlines()
    assert completed.returncode == 0 and lines, completed.stderr[-4000:]
    return json.loads(lines[-1])


def step_statuses(url: str, run_id: str) -> dict[str, str]:
    """Step id → status of one run in ``elt_meta.steps``."""
    statement = "select step_id, status from elt_meta.steps where run_id = %s"
    return dict(query(url, statement, (run_id,)))


def latest_run_id(url: str, pipeline: str, orchestrator: str) -> str:
    """The elt run id of the pipeline's latest run under ``orchestrator``."""
    return query(
        url,
        "select run_id from elt_meta.runs where pipeline = %s and orchestrator = %s"
        " order by started_at desc limit 1",
        (pipeline, orchestrator),
    )[0][0]


# -- backfills: which load brought which day's orders --------------------------------------

# every generated demo order shares one updated_at (the production cursor), so a backfill
# test keys the orders on ordered_at, whose days the windows split; no lookback, so windows
# do not overlap and each day's rows carry that day's load id
BACKFILL_ORDERS = {"primary_key": "id", "cursor": "ordered_at"}
# the published tables without the columns naming the load a row came from (a rerun of an
# interval loads it again, under a new load id, by design)
_TABLE_FINGERPRINT = """
    select md5(coalesce(string_agg(row_text, ',' order by row_text), '')) from (
        select (to_jsonb(t) - array(
            select key from jsonb_object_keys(to_jsonb(t)) as key
            where key like '\\_%%' or key in ('load_id', 'loaded_at')
        ))::text as row_text
        from {table} as t
    ) as rows_
"""


def with_backfill_orders(document: dict) -> dict:
    """``document`` with the shop's orders on the ``ordered_at`` cursor (see BACKFILL_ORDERS)."""
    document["sources"]["shop"]["tables"]["orders"] = dict(BACKFILL_ORDERS)
    return document


def published_fingerprints(url: str, schema: str = "analytics") -> dict[str, str]:
    """Table → fingerprint of its rows (load columns left out), for every table or view of
    ``schema``."""
    tables = query(
        url,
        "select table_name from information_schema.tables where table_schema = %s order by 1",
        (schema,),
    )
    return {name: fingerprint(url, f'"{schema}"."{name}"') for (name,) in tables}


def fingerprint(url: str, table: str) -> str:
    """One hash of ``table``'s rows, leaving out the columns naming the load of a row."""
    return query(url, _TABLE_FINGERPRINT.format(table=table))[0][0]


def busy_days(shop_url: str, count: int = 3) -> list[date]:
    """``count`` consecutive days in the middle of the demo shop's orders, each with orders."""
    statement = "select distinct ordered_at::date from orders order by 1"
    days = [row[0] for row in query(shop_url, statement)]
    middle = len(days) // 2
    chosen = days[middle - count // 2 : middle - count // 2 + count]
    assert chosen[-1] - chosen[0] == timedelta(days=count - 1), days
    return chosen


def orders_on(url: str, table: str, day: date) -> int:
    """Rows of ``table`` (``orders`` or ``raw_shop.orders``) ordered on ``day``."""
    start = datetime(day.year, day.month, day.day)
    statement = f"select count(*) from {table} where ordered_at >= %s and ordered_at < %s"
    return query(url, statement, (start, start + timedelta(days=1)))[0][0]


def day_loads(url: str, days: list[date]) -> dict[date, str]:
    """Per day: the one dlt load that brought that day's raw orders, which must have brought
    no other day's (AssertionError otherwise)."""
    found = {}
    for day in days:
        start = datetime(day.year, day.month, day.day)
        (load_ids,) = query(
            url,
            "select array_agg(distinct _dlt_load_id) from raw_shop.orders"
            " where ordered_at >= %s and ordered_at < %s",
            (start, start + timedelta(days=1)),
        )[0]
        assert len(load_ids) == 1, f"{day}: orders from loads {load_ids}"
        first, last = query(
            url,
            "select min(ordered_at), max(ordered_at) from raw_shop.orders where _dlt_load_id = %s",
            (load_ids[0],),
        )[0]
        assert first.date() == last.date() == day, f"load {load_ids[0]} spans {first} … {last}"
        found[day] = load_ids[0]
    return found
