"""REST API → warehouse: our ``rest_api`` ingestion vs a minimal hand-written client.

Both read every page of the demo tweets API (same server, same page size) and load the rows
into the warehouse; the hand client pages with urllib and COPYs each page.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
import urllib.request

import psycopg2

from bench.cases.common import count_rows, fresh_table, ingest_configured, warehouse_url

API_URL = "BENCH_API_URL"
API_TOKEN = "BENCH_API_TOKEN"  # noqa: S105 - the name of a variable
COLUMNS = "id text, user_id text, tweeted_at text, content text"
FIELDS = ("id", "user_id", "tweeted_at", "content")


def ours(params: dict) -> dict:
    """``ingestion.runner.ingest`` of a ``rest_api`` source (page-number paginator)."""
    import ingestion.runner  # noqa: F401 - imported before the clock starts

    return ingest_configured(params)


def _page(base_url: str, token: str, page: int, page_size: int) -> dict:
    url = f"{base_url}/tweets?page={page}&page_size={page_size}"
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError("the benchmark's API must be the local demo API")
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - http only
        return json.load(response)


def hand_client(params: dict) -> dict:
    """urllib page by page until ``total_pages``, each page COPYed as CSV."""
    base_url, token = os.environ[API_URL].rstrip("/"), os.environ[API_TOKEN]
    target = warehouse_url()
    started = time.perf_counter()
    fresh_table(target, "bench_api_hand", "tweets", COLUMNS)
    conn = psycopg2.connect(target)
    try:
        with conn, conn.cursor() as cur:
            page, pages = 1, 1
            while page <= pages and page <= params.get("max_pages", 100_000):
                body = _page(base_url, token, page, params["page_size"])
                pages = body["total_pages"]
                buffer = io.StringIO()
                writer = csv.writer(buffer)
                writer.writerows([row.get(name) for name in FIELDS] for row in body["data"])
                buffer.seek(0)
                cur.copy_expert("copy bench_api_hand.tweets from stdin with (format csv)", buffer)
                page += 1
    finally:
        conn.close()
    work = time.perf_counter() - started
    return {"rows": count_rows(target, "bench_api_hand", "tweets"), "work_s": work}


VARIANTS = {"ours": ours, "hand_client": hand_client}
