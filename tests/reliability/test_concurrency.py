"""Two runs of the same pipeline started together: one refuses, the data stays exact."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from elt import paths, settings
from tests.helpers.warehouse import rows

pytestmark = pytest.mark.integration


def test_two_runs_at_once_one_refuses_and_data_stays_exact(pg, demo_sources):
    command = [sys.executable, "-m", "elt.cli", "run", "jaffle_daily"]
    env = {**os.environ}
    first, second = (
        subprocess.Popen(
            command,
            env=env,
            cwd=paths.project_root(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    )
    outputs = [process.communicate(timeout=600)[0] for process in (first, second)]
    codes = sorted(process.returncode for process in (first, second))
    assert codes[0] == 0 and codes[1] != 0, outputs
    refused = next(out for out, p in zip(outputs, (first, second), strict=True) if p.returncode)
    # the refusal names the run that holds the pipeline, when it started and who runs it
    assert re.search(
        r"pipeline 'jaffle_daily' is already running \(run jaffle_daily-\S+, started \S+ \S+"
        r" \S+, by elt\); wait for it to finish",
        refused,
    ), refused

    url = pg.url()
    shop = settings.warehouse_url("shop")
    expected = rows(shop, "select count(*) from orders")[0][0]
    assert rows(url, "select count(*), count(distinct order_id) from analytics.orders") == [
        (expected, expected)
    ]
    assert rows(url, "select count(*) - count(distinct id) from raw_shop.orders") == [(0,)]
    assert rows(url, "select status, count(*) from elt_meta.runs group by status") == [
        ("succeeded", 1)
    ]
