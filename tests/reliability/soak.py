"""The soak (`make soak`): consecutive incremental ingests with random faults, then counts.

Each round the sources change (new rows, late updates of old rows, rows deleted), one fault is
picked at random and injected, the ingest runs, and a failed ingest is rerun once without the
fault. The source's schema drifts twice: a column is added (filled for every row) at the
third round, one is dropped at the sixth. After every round the warehouse must hold exactly
the sources' rows: the report gives runs, faults injected, rows expected and found,
duplicates, losses, deleted rows still in raw and stale values (all must be 0).

    python -m tests.reliability.soak --runs 10 --seed 1

Sources: a PostgreSQL table (ingested by `elt ingest` in a subprocess, so it can be killed
with SIGKILL at a random moment) and a REST API on 127.0.0.1 that injects HTTP faults.
Everything runs on an embedded warehouse of its own (``ELT_HOME``, default ``.elt/soak``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psycopg2

from elt import paths, settings

SHOP_DB = "soak_source"
INITIAL_ROWS = 200_000
KILL_WINDOW_S = (0.5, 6.0)
ROUND_TIMEOUT_S = 300
# schema drift at the source, by round: a column added (every row filled), one dropped
DRIFT = {
    3: "alter table orders add column channel text not null default 'web'",
    6: "alter table orders drop column note",
}
FAULTS = ("none", "sigkill", "429", "500", "slow", "cut", "badjson", "repeat")
CONFIG = """\
version: 1
sources:
  soakshop:
    type: sql_database
    credentials: env:SOAK_SHOP_URL
    schema: public
    tables:
      orders: {primary_key: id, cursor: updated_at, lookback: 1h, reconcile: per_run}
  soakapi:
    type: rest_api
    base_url: env:SOAK_API_URL
    paginator: {type: page_number, page_param: page, total_path: total_pages}
    resources:
      tweets: {path: tweets, data_selector: data, primary_key: id, params: {page_size: 10}}
pipelines:
  soak:
    sources: [soakshop, soakapi]
"""


@dataclass
class SoakReport:
    """What the soak did and found."""

    runs: int = 0
    reruns: int = 0
    kills: int = 0  # SIGKILLs that hit a running ingest (it may finish before its moment)
    faults: dict[str, int] = field(default_factory=dict)
    rows_expected: int = 0
    rows_found: int = 0
    duplicates: int = 0
    losses: int = 0
    wrong_values: int = 0
    deleted_kept: int = 0  # rows deleted at the source, still in raw
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        """No duplicate, no lost row, no deleted row kept, no stale value."""
        return self.duplicates == self.losses == self.wrong_values == self.deleted_kept == 0


def _execute(url: str, statement: str) -> list[tuple]:
    with psycopg2.connect(url, connect_timeout=10) as conn, conn.cursor() as cur:
        cur.execute(statement)
        return cur.fetchall() if cur.description else []


def _prepare_shop(admin: settings.Connection) -> str:
    """A fresh source database with INITIAL_ROWS orders; returns its URL."""
    server = psycopg2.connect(admin.url("postgres"))
    server.autocommit = True
    with server.cursor() as cur:
        cur.execute(f'drop database if exists "{SHOP_DB}" with (force)')
        cur.execute(f'create database "{SHOP_DB}"')
    server.close()
    url = admin.url(SHOP_DB)
    _execute(
        url,
        "create table orders (id bigint primary key, amount numeric(12, 2), note text,"
        " updated_at timestamptz not null);"
        " insert into orders select g, g * 0.01, repeat('n', 40),"
        f" now() - interval '10 days' + g * interval '1 second'"
        f" from generate_series(1, {INITIAL_ROWS}) g",
    )
    return url


def _change_shop(url: str, rng: random.Random, round_number: int) -> None:
    """New orders, late updates of old ones and deleted ones, as an OLTP database would have
    between runs; the schema drifts at two rounds (DRIFT)."""
    new, updated, deleted = rng.randint(500, 3000), rng.randint(1, 50), rng.randint(0, 20)
    _execute(
        url,
        "insert into orders (id, amount, updated_at) select m + g, g * 0.5, now()"
        f" from (select max(id) m from orders) s, generate_series(1, {new}) g;"
        f" update orders set amount = amount + 1, updated_at = now()"
        f" where id in (select id from orders order by random() limit {updated});"
        " delete from orders where id in"
        f" (select id from orders order by random() limit {deleted})",
    )
    if round_number in DRIFT:
        _execute(url, DRIFT[round_number])


def _ingest_shop(env: dict[str, str], fault: str, rng: random.Random, report: SoakReport) -> bool:
    """`elt ingest soakshop` in a subprocess, killed with SIGKILL for that fault; True if
    it succeeded."""
    command = [sys.executable, "-m", "elt.cli", "ingest", "soakshop"]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    if fault == "sigkill":
        try:
            process.wait(timeout=rng.uniform(*KILL_WINDOW_S))
        except subprocess.TimeoutExpired:
            process.kill()
            report.kills += 1
    return process.wait(timeout=ROUND_TIMEOUT_S) == 0


def _ingest_api(config, api, fault: str, rng: random.Random) -> bool:
    """Ingest the REST source in-process with ``fault`` on one page; True if it succeeded."""
    from ingestion.runner import IngestError, ingest

    pages = -(-len(api.tweets) // 10)
    api.faults = {} if fault in ("none", "sigkill") else {rng.randint(2, pages): [fault]}
    try:
        ingest(config.sources["soakapi"])
    except IngestError:
        return False
    finally:
        api.faults = {}
    return True


def _check(report: SoakReport, warehouse: str, shop: str, tweets: list[dict]) -> None:
    """Compare the warehouse with the sources: count, duplicates, losses, stale values."""
    columns = "id, amount, channel" if _has_channel(shop) else "id, amount, null"
    source = {row[0]: row[1:] for row in _execute(shop, f"select {columns} from orders")}
    loaded = [
        (row[0], row[1:])
        for row in _execute(warehouse, f"select {columns} from raw_soakshop.orders")
    ]
    found_ids = Counter(row_id for row_id, _ in loaded)
    values = dict(loaded)
    api_ids = {tweet["id"] for tweet in tweets}
    api_loaded = Counter(i for (i,) in _execute(warehouse, "select id from raw_soakapi.tweets"))
    report.rows_expected = len(source) + len(api_ids)
    report.rows_found = len(loaded) + sum(api_loaded.values())
    report.duplicates = sum(n - 1 for n in found_ids.values() if n > 1) + sum(
        n - 1 for n in api_loaded.values() if n > 1
    )
    report.losses = len(source.keys() - found_ids.keys()) + len(api_ids - api_loaded.keys())
    report.deleted_kept = len(found_ids.keys() - source.keys())
    report.wrong_values = sum(1 for key, amount in source.items() if values.get(key) != amount)


def _has_channel(url: str) -> bool:
    found = "select 1 from information_schema.columns where table_name = 'orders'"
    return bool(_execute(url, found + " and column_name = 'channel'"))


def soak(runs: int, seed: int) -> SoakReport:
    """Run the soak; returns its report (not raising on bad figures: see ``ok``)."""
    from elt import config as elt_config
    from tests.reliability import faulty_api

    rng = random.Random(seed)
    report = SoakReport(faults={fault: 0 for fault in FAULTS})
    started = time.monotonic()
    admin = settings.warehouse()
    work = paths.state_dir() / "work"
    work.mkdir(parents=True, exist_ok=True)
    (work / "pipelines.yml").write_text(CONFIG)
    shop = _prepare_shop(admin)
    for schema in ("raw_soakshop", "raw_soakapi"):
        _execute(admin.url(), f"drop schema if exists {schema} cascade")
    tweets = [{"id": i, "text": f"tweet {i}"} for i in range(1, 41)]
    api, thread = faulty_api.start(tweets)
    env_vars = {
        "ELT_CONFIG": str(work / "pipelines.yml"),
        "SOAK_SHOP_URL": shop,
        "SOAK_API_URL": f"http://127.0.0.1:{api.server_address[1]}",
        "DLT_DATA_DIR": str(work / "dlt"),
        "RUNTIME__REQUEST_TIMEOUT": "1",
        "RUNTIME__REQUEST_BACKOFF_FACTOR": "0.1",
        "RUNTIME__REQUEST_MAX_ATTEMPTS": "3",
    }
    os.environ.update(env_vars)
    env = {**os.environ}
    try:
        config = elt_config.load(work / "pipelines.yml", check_env=True)
        for _ in range(runs):
            _round(report, config, api, env, rng, shop, tweets)
            _check(report, admin.url(), shop, tweets)
            print(f"run {report.runs}: {_summary(report)}", flush=True)
    finally:
        faulty_api.stop(api, thread)
    report.duration_s = round(time.monotonic() - started, 1)
    return report


def _round(report, config, api, env, rng, shop, tweets) -> None:
    """One incremental run of both sources under one random fault, rerun if it failed."""
    _change_shop(shop, rng, report.runs + 1)
    tweets.extend({"id": len(tweets) + i, "text": "new"} for i in range(1, rng.randint(1, 15)))
    fault = rng.choice(FAULTS)
    report.faults[fault] += 1
    report.runs += 1
    shop_ok = _ingest_shop(env, fault, rng, report)
    api_ok = _ingest_api(config, api, fault, rng)
    if not shop_ok:
        report.reruns += 1
        if not _ingest_shop(env, "none", rng, report):
            raise RuntimeError("the rerun of soakshop failed: run `elt ingest soakshop` to see why")
    # a page the server repeated instead of the next one looks like success: nothing can
    # tell, so the next run fills the gap (it is rerun here to check exactly that)
    if not api_ok or fault == "repeat":
        report.reruns += 1
        if not _ingest_api(config, api, "none", rng):
            raise RuntimeError("the rerun of soakapi failed")


def _summary(report: SoakReport) -> str:
    return (
        f"expected {report.rows_expected:,} rows, found {report.rows_found:,}, "
        f"duplicates {report.duplicates}, losses {report.losses}, "
        f"deleted rows kept {report.deleted_kept}, stale values {report.wrong_values}"
    )


def main() -> int:
    """Command line: run the soak, print and save the report; exit 1 on a bad figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    report = soak(args.runs, args.seed)
    injected = {fault: n for fault, n in report.faults.items() if n and fault != "none"}
    print(
        f"\nsoak: {report.runs} runs in {report.duration_s} s, "
        f"{sum(injected.values())} faults injected {injected} ({report.kills} kills landed), "
        f"{report.reruns} reruns; " + _summary(report)
    )
    out = paths.state_dir() / "last-report.json"
    out.write_text(json.dumps({**asdict(report), "ok": report.ok}, indent=2) + "\n")
    print(f"report: {out}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    os.environ.setdefault("ELT_HOME", str(Path(__file__).resolve().parents[2] / ".elt" / "soak"))
    sys.exit(main())
