"""The JSON Schema and docs/pipelines-yml.md are made from the pydantic models: the committed
files must be what `elt schema --write` makes now, and the schema must accept what the loader
accepts (the project's pipelines.yml, the documented examples) and refuse literal secrets."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

from elt import config, paths, schema_docs
from elt.yaml_lines import parse_yaml

SOURCE_EXAMPLES = ("SqlDatabaseSource", "RestApiSource", "FilesystemSource", "DltSourceRef")
FIX = "run `elt schema --write` and commit the result"


@pytest.mark.parametrize("name", sorted(schema_docs.generated_files()))
def test_the_generated_files_are_up_to_date(name):
    committed = (paths.project_root() / name).read_text()
    assert committed == schema_docs.generated_files()[name], f"{name} is stale: {FIX}"


def test_pipelines_yml_points_editors_to_the_schema():
    first = (paths.project_root() / "pipelines.yml").read_text().splitlines()[0]
    assert first == f"# yaml-language-server: $schema=./{schema_docs.SCHEMA_FILE}"


def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema_docs.json_schema())


def test_the_schema_accepts_the_project_file_and_every_example(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # as editors read YAML 1.2: `on` is a key, dates are text
    text = (paths.project_root() / "pipelines.yml").read_text()
    project = json.loads(json.dumps(parse_yaml(text).data, default=str))
    assert list(_validator().iter_errors(project)) == []
    sources = {}
    for name in SOURCE_EXAMPLES:
        sources.update(parse_yaml(schema_docs.EXAMPLES[name]).data)
    pipelines = parse_yaml(schema_docs.EXAMPLES["Pipeline"]).data
    pipelines["daily"]["sources"] = list(sources)
    document = {"version": 1, "sources": sources, "pipelines": pipelines}
    assert list(_validator().iter_errors(document)) == []
    path = tmp_path / "pipelines.yml"
    path.write_text(yaml.safe_dump(document))
    assert config.validate_file(path, check_env=False) == []  # the loader agrees


def test_the_schema_refuses_unknown_keys_and_literal_secrets():
    document = {
        "sources": {
            "shop": {"type": "sql_database", "credentials": "postgresql://u:pw@h/db"},
        },
        "pipelines": {"p": {"sources": "shop", "shedule": "@daily"}},
    }
    messages = sorted(error.message for error in _validator().iter_errors(document))
    assert any("'shedule' was unexpected" in message for message in messages), messages
    shop = document["sources"]["shop"]
    errors = list(_validator().iter_errors({"sources": {"shop": {**shop, "tables": {"o": {}}}}}))
    inner = [e.message for error in errors for e in error.context or []]
    assert any("'postgresql://u:pw@h/db' does not match '^env:" in m for m in inner), inner
