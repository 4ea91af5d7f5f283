"""Volume and freshness anomaly rules on a real load history in elt_meta (PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from elt import runs
from elt.config import Pipeline
from expectations.gate import run_quality
from tests.helpers.warehouse import rows

pytestmark = pytest.mark.integration

USUAL = [1000, 1030, 975, 1012, 990, 1021, 968, 1004]


def _history(url: str, source: str, counts: list[int], every: timedelta) -> list[str]:
    """One load per count, ``every`` apart, ending now; returns the load ids, oldest first."""
    start = datetime.now(UTC) - every * len(counts)
    ids = []
    for index, count in enumerate(counts):
        load_id = f"{source}-{index}"
        rows(
            url,
            "insert into elt_meta.loads (run_id, load_id, source, table_name, rows, status,"
            " loaded_at) values (%s, %s, %s, 'orders', %s, 'succeeded', %s)",
            (f"run-{load_id}", load_id, source, count, start + every * (index + 1)),
        )
        ids.append(load_id)
    return ids


def _pipeline(source: str) -> Pipeline:
    return Pipeline(
        name=f"anomalies_{source}",
        sources=[source],
        quality={
            "rules": [
                {"type": "volume_anomaly", "table": f"raw_{source}.orders", "severity": "warn"},
                {"type": "freshness_anomaly", "table": f"raw_{source}.orders", "method": "zscore"},
            ]
        },
    )


def _run(pg, source: str, load_id: str):
    from elt.config import ProjectConfig

    pipe = _pipeline(source)
    config = ProjectConfig(sources={}, pipelines={pipe.name: pipe})
    run_id = f"run-{load_id}"
    return run_quality(
        config, pipe, run_id=run_id, url=pg.url(), stage="raw", load_id=load_id, source=source
    ), run_id


@pytest.fixture
def source(pg) -> str:
    runs.migrate(pg.url())
    return f"anom{uuid.uuid4().hex[:8]}"


def test_a_load_with_a_tenth_of_the_usual_rows_raises_a_volume_anomaly(pg, source) -> None:
    ids = _history(pg.url(), source, [*USUAL, 101], timedelta(hours=1))
    outcome, run_id = _run(pg, source, ids[-1])
    volume = next(c for c in outcome.checks if c.expectation_type == "volume_anomaly")
    assert not volume.success and volume.severity == "warn" and volume.observed_value == 101
    assert outcome.warnings == [volume] and outcome.blocking == []
    recorded = rows(
        pg.url(),
        "select expectation_name, success, observed_value, details ->> 'expected_text'"
        " from elt_meta.checks where run_id = %s and expectation_type = 'volume_anomaly'",
        (run_id,),
    )
    assert recorded == [
        (f"volume_anomaly_raw_{source}_orders", False, 101, recorded[0][3]),
    ]
    assert recorded[0][3].startswith("|mad score| ≤ 3.5 around 1,002 rows")


def test_a_normal_load_raises_nothing(pg, source) -> None:
    ids = _history(pg.url(), source, [*USUAL, 1009], timedelta(hours=1))
    outcome, _ = _run(pg, source, ids[-1])
    assert [c.success for c in outcome.checks] == [True, True]


def test_a_load_long_after_the_usual_interval_raises_a_freshness_anomaly(pg, source) -> None:
    ids = _history(pg.url(), source, USUAL, timedelta(hours=1))
    late = datetime.now(UTC) + timedelta(hours=30)
    rows(
        pg.url(),
        "insert into elt_meta.loads (run_id, load_id, source, table_name, rows, status,"
        " loaded_at) values ('run-late', %s, %s, 'orders', 1000, 'succeeded', %s)",
        (f"{source}-late", source, late),
    )
    outcome, _ = _run(pg, source, f"{source}-late")
    fresh = next(c for c in outcome.checks if c.expectation_type == "freshness_anomaly")
    assert not fresh.success and fresh.observed_value > 30 * 3600
    assert len(ids) == len(USUAL)
