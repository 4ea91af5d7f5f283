"""pipelines.yml's freshness thresholds in dbt's form (no services)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from elt import source_freshness
from elt.config import ProjectConfig


@pytest.mark.parametrize(
    ("duration", "expected"),
    [
        (timedelta(days=2), {"count": 2, "period": "day"}),
        (timedelta(hours=36), {"count": 36, "period": "hour"}),
        (timedelta(minutes=90), {"count": 90, "period": "minute"}),
        (timedelta(seconds=45), {"count": 1, "period": "minute"}),  # dbt has no seconds
        (timedelta(seconds=61), {"count": 2, "period": "minute"}),
    ],
)
def test_durations_become_dbt_periods(duration, expected) -> None:
    assert source_freshness.dbt_period(duration) == expected


def test_env_holds_every_source_with_thresholds_and_only_those() -> None:
    config = ProjectConfig(
        sources={
            "crm": {
                "type": "sql_database",
                "credentials": "env:CRM_URL?",
                "tables": {"leads": {}},
                "freshness": {"warn_after": "12h"},
            },
            "files": {
                "type": "filesystem",
                "bucket_url": "env:B?",
                "files": {"a": {"glob": "a/*.csv", "format": "csv"}},
            },
        },
        pipelines={},
    )
    value = json.loads(source_freshness.env(config)[source_freshness.ENV])
    assert value == {"crm": {"warn_after": {"count": 12, "period": "hour"}}}
    assert source_freshness.env(None) == {source_freshness.ENV: "{}"}


def test_the_sources_yml_expression_names_the_source() -> None:
    text = source_freshness.dbt_config("shop")
    assert text == "\"{{ fromjson(env_var('ELT_SOURCE_FRESHNESS', '{}')).get('shop') }}\""
