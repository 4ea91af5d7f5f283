"""``type: dlt`` sources: the reference and arguments are checked, the function is found and
called with resolved arguments."""

from __future__ import annotations

from pathlib import Path

import pytest

from elt import config
from elt.config import DltSourceRef
from ingestion.sources import build_source
from ingestion.sources.custom import CustomSourceError

YAML = """\
sources:
  feed:
    type: dlt
    source: {source}
    args: {args}
pipelines:
  p: {{sources: [feed]}}
"""


def _problems(tmp_path: Path, source: str, args: str = "{}") -> list[str]:
    path = tmp_path / "pipelines.yml"
    path.write_text(YAML.format(source=source, args=args))
    return [str(p) for p in config.validate_file(path, check_env=False)]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_reference_and_args_are_checked(tmp_path):
    assert _problems(tmp_path, "ingestion.custom.events_feed:events_feed") == []
    assert _problems(tmp_path, "ingestion/custom/events_feed.py") == [
        "pipelines.yml:4: sources.feed.source: 'ingestion/custom/events_feed.py' is not a"
        " reference to a function (hint: write package.module:function, e.g."
        " ingestion.custom.events_feed:events_feed)"
    ]
    found = _problems(tmp_path, "m:f", "{base_url: 'http://x', token: tok-123}")
    assert found == [
        "pipelines.yml:5: sources.feed.args.token: argument 'token' holds a literal credential"
        " (hint: export it and write token: env:NAME)"
    ]


def _source(reference: str, **spec) -> DltSourceRef:
    return DltSourceRef.model_validate({"name": "feed", "type": "dlt", "source": reference, **spec})


def test_the_source_is_built_with_resolved_args(monkeypatch):
    monkeypatch.setenv("FEED_TOKEN", "t0ken-value")
    built = build_source(
        _source(
            "ingestion.custom.events_feed:events_feed",
            args={"base_url": "http://127.0.0.1:9", "token": "env:FEED_TOKEN"},
            contract="freeze",
        )
    )
    assert set(built.source.resources) == {"events"}
    assert built.secrets == ["t0ken-value"]
    assert built.source.schema_contract["columns"] == "freeze"


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("ingestion.custom.nothing_here:f", "cannot import ingestion.custom.nothing_here"),
        ("ingestion.custom.events_feed:nope", "has no function 'nope'"),
    ],
)
def test_a_wrong_reference_is_a_clear_error(reference, message):
    with pytest.raises(CustomSourceError, match=message):
        build_source(_source(reference))


def test_an_unknown_resource_is_named(monkeypatch):
    monkeypatch.setenv("FEED_TOKEN", "x")
    with pytest.raises(CustomSourceError, match="has no resource users; it has: events"):
        build_source(
            _source(
                "ingestion.custom.events_feed:events_feed",
                args={"base_url": "http://127.0.0.1:9", "token": "env:FEED_TOKEN"},
                resources=["users"],
            )
        )
