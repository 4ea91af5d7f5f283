"""OpenLineage events of a run recorded in elt_meta: schema-valid, file and HTTP transports,
and the portal's graph drawn from them (real PostgreSQL, a real HTTP server)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from elt import lineage, runs
from elt.config import ProjectConfig
from elt.docs_site import lineage_graph
from tests.helpers.openlineage_schema import validation_errors
from tests.helpers.webhook import Webhook

pytestmark = pytest.mark.integration


def _config(url: str | None = None) -> ProjectConfig:
    return ProjectConfig(
        sources={
            "crm": {"type": "sql_database", "credentials": "env:CRM_URL?", "tables": {"leads": {}}}
        },
        pipelines={
            "crm_daily": {
                "sources": ["crm"],
                "export": {"to": "s3://lake/crm", "models": ["leads"]},
            }
        },
        lineage={"url": url} if url else {},
    )


@pytest.fixture
def recorded_run(pg) -> str:
    """A finished run of crm_daily: ingest, transform, quality, publish, export steps."""
    url = pg.url()
    runs.migrate(url)
    run_id = f"crm_daily-{uuid.uuid4().hex[:8]}"
    runs.open_run(url, run_id, "crm_daily", "elt", reopen=False)
    start = datetime.now(UTC) - timedelta(minutes=5)
    steps = [
        ("ingest_crm", "ingest", {"rows": {"leads": 40, "leads__tags": 90}}),
        ("transform", "transform", {}),
        ("quality_gate", "quality", {}),
        ("publish", "publish", {"tables": {"leads": 40}}),
        ("export", "export", {"rows": {"leads": 40}}),
    ]
    for index, (step_id, kind, detail) in enumerate(steps):
        at = start + timedelta(seconds=10 * index)
        record = runs.StepRecord(step_id, kind, "succeeded", at, at + timedelta(seconds=5))
        record.detail = detail
        runs.record_step(url, run_id, record)
    runs.finish_run(url, run_id, "succeeded")
    return run_id


def test_the_events_of_a_run_validate_against_the_openlineage_schema(pg, recorded_run) -> None:
    events = lineage.as_dicts(
        lineage.build_events(_config(), _config().pipelines["crm_daily"], recorded_run, pg.url())
    )
    assert [e["eventType"] for e in events[:3]] == ["START", "START", "COMPLETE"]
    assert events[-1]["eventType"] == "COMPLETE" and events[-1]["job"]["name"] == "crm_daily"
    for event in events:
        assert validation_errors(event) == [], event
    ingest = next(e for e in events if e["job"]["name"] == "crm_daily.ingest_crm" and e["outputs"])
    assert [d["name"] for d in ingest["inputs"]] == ["leads", "leads__tags"]
    assert ingest["inputs"][0]["namespace"] == "sql_database://crm"
    tags = ingest["outputs"][1]
    assert tags["name"] == "warehouse.raw_crm.leads__tags"
    assert tags["outputFacets"]["outputStatistics"]["rowCount"] == 90
    assert ingest["run"]["facets"]["parent"]["job"]["name"] == "crm_daily"
    assert "password" not in json.dumps(events) and "@" not in events[0]["job"]["namespace"]


def test_the_file_transport_writes_the_events_and_the_graph_has_source_and_export(
    pg, recorded_run
) -> None:
    config = _config()
    count = lineage.emit_run_events(config, config.pipelines["crm_daily"], recorded_run, pg.url())
    written = lineage.read_events(recorded_run)
    assert len(written) == count >= 12
    graph = lineage_graph.from_events(written, "analytics")
    layers = {layer for layer, _ in graph.nodes.values()}
    assert {"source", "raw", "published", "export"} <= layers
    labels = {(graph.nodes[a][1], graph.nodes[b][1]) for a, b, _ in graph.edges}
    assert ("crm (sql_database)/leads", "raw_crm.leads") in labels
    assert ("leads", "s3://lake/crm/leads") in labels


def test_the_http_transport_posts_every_event_to_the_url_from_pipelines_yml(
    pg, recorded_run
) -> None:
    hook = Webhook()
    try:
        url = f"http://127.0.0.1:{hook.server.server_address[1]}"
        config = _config(url)
        count = lineage.emit_run_events(
            config, config.pipelines["crm_daily"], recorded_run, pg.url()
        )
        received = hook.take()
    finally:
        hook.close()
    assert len(received) == count
    assert {e["run"]["runId"] for e in received if e["job"]["name"] == "crm_daily"} == {
        lineage._run_uuid(recorded_run)
    }
