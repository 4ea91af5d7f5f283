"""The dbt project as a setting: where it is, its generated profile, what it publishes, and
the freshness of the orchestrators' manifest (no services needed)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from elt import config as elt_config
from elt import project as dbt_project
from elt.marts import Mart, is_published, not_built
from orchestration.airflow import manifest

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "acme_dbt"


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A throwaway ELT_HOME."""
    monkeypatch.setenv("ELT_HOME", str(tmp_path / "state"))
    return tmp_path


def _project(folder: Path, name: str, profile: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    document = {"name": name, "version": "1.0.0", **({"profile": profile} if profile else {})}
    (folder / "dbt_project.yml").write_text(yaml.safe_dump(document))
    (folder / "models").mkdir(exist_ok=True)
    (folder / "models" / "a.sql").write_text("select 1 as id\n")
    return folder


def _config(path: Path, document: dict) -> Path:
    base = {
        "sources": {
            "s": {
                "type": "filesystem",
                "bucket_url": "/tmp",
                "files": {"f": {"glob": "*.csv", "format": "csv"}},
            }
        }
    }
    path.write_text(yaml.safe_dump({**base, **document}))
    return path


def test_project_dir_is_read_relative_to_pipelines_yml_and_per_pipeline(home):
    _project(home / "team" / "analytics", "analytics", "warehouse")
    _project(home / "other", "other")
    file = _config(
        home / "team" / "pipelines.yml",
        {
            "dbt": {"project_dir": "analytics"},
            "pipelines": {
                "a": {"sources": ["s"]},
                "b": {"sources": ["s"], "dbt": {"project_dir": "../other", "select": ["x"]}},
            },
        },
    )
    config = elt_config.load(file)
    first = dbt_project.of(config, config.pipeline("a"))
    second = dbt_project.of(config, config.pipeline("b"))
    assert (first.path, first.name, first.profile) == (
        (home / "team" / "analytics").resolve(),
        "analytics",
        "warehouse",
    )
    assert (second.path, second.profile) == ((home / "other").resolve(), "elt")
    assert first.key != second.key
    assert [p.name for p in manifest.projects_of(config)] == ["analytics", "other"]


def test_a_project_dir_without_dbt_project_yml_is_a_config_problem(home):
    _project(home / "ok", "ok")
    file = _config(
        home / "pipelines.yml",
        {
            "dbt": {"project_dir": "missing"},
            "pipelines": {"p": {"sources": ["s"], "dbt": {"project_dir": "nope/dbt"}}},
        },
    )
    problems = [str(p) for p in elt_config.validate_file(file, check_env=False)]
    assert any("dbt.project_dir: no dbt_project.yml in missing" in p for p in problems), problems
    assert any("pipelines.p.dbt.project_dir: no dbt_project.yml in nope/dbt" in p for p in problems)


def test_the_generated_profile_has_the_projects_profile_name_and_no_secret(home, monkeypatch):
    monkeypatch.setenv("DBT_ENV_SECRET_PGPASSWORD", "s3cret-value")
    project = dbt_project.load(FIXTURE)
    path = project.profiles_file()
    document = yaml.safe_load(path.read_text())
    assert project.profile == "acme_warehouse"
    assert document["acme_warehouse"]["target"] == dbt_project.TARGET
    assert "s3cret-value" not in path.read_text()
    written = path.stat().st_mtime_ns
    os.utime(path, ns=(written - 10**9, written - 10**9))
    project.profiles_file()  # same content: not rewritten
    assert path.stat().st_mtime_ns == written - 10**9
    assert project.cli_args()[-4:] == ["--profile", "acme_warehouse", "--target", "elt"]


@pytest.mark.parametrize(
    ("config", "tags", "path", "published"),
    [
        ({"materialized": "table"}, [], "models/marts/orders.sql", True),
        ({"materialized": "incremental"}, [], "models/marts/finance/revenue.sql", True),
        ({"materialized": "view"}, [], "models/marts/orders_v.sql", False),
        ({"materialized": "table"}, [], "models/core/helper.sql", False),
        ({"materialized": "table", "meta": {"publish": True}}, [], "models/reporting/x.sql", True),
        ({"materialized": "table"}, ["publish"], "models/reporting/x.sql", True),
        ({"materialized": "table", "meta": {"publish": False}}, [], "models/marts/s.sql", False),
        ({"materialized": "view", "meta": {"publish": True}}, [], "models/reporting/v.sql", False),
        ({"materialized": "table"}, [], "marts.sql", False),  # a file, not a folder, named so
    ],
)
def test_publish_rule(config, tags, path, published):
    assert is_published(config, tags, path) is published


def test_marts_not_built_are_named():
    marts = [Mart("model.p.a", "a", "audit"), Mart("model.p.b", "b", "audit")]
    assert not_built(marts, ["model.p.a", "seed.p.c"]) == ["b"]


def _fake_manifest(project, *, name: str | None = None, folder: str | None = None) -> None:
    """What parse_manifest writes, without running dbt."""
    target = manifest.target_dir(project)
    target.mkdir(parents=True, exist_ok=True)
    meta = {"metadata": {"dbt_version": "1", "env": {}, "project_name": name or project.name}}
    (target / "manifest.json").write_text(json.dumps(meta) + "\n")
    stamp = {
        "project_dir": folder or str(project.path),
        "project_name": name or project.name,
        "files": manifest.fingerprint(project),
    }
    (target / "elt_stamp.json").write_text(json.dumps(stamp))


def test_a_manifest_of_another_project_is_refused(home):
    project = dbt_project.load(_project(home / "mine", "mine"))
    _fake_manifest(project, name="theirs", folder=str(home / "theirs"))
    with pytest.raises(manifest.ManifestError, match=r"built from another dbt project.*'theirs'"):
        manifest.require_manifest(project)
    _fake_manifest(project)
    assert manifest.require_manifest(project) == manifest.manifest_path(project)


def test_staleness_is_by_content_not_by_date(home):
    folder = _project(home / "mine", "mine")
    project = dbt_project.load(folder)
    _fake_manifest(project)
    model = folder / "models" / "a.sql"
    os.utime(model, (model.stat().st_atime + 60, model.stat().st_mtime + 60))  # newer, same
    assert manifest.stale_files(project) == []
    model.write_text("select 2 as id\n")
    (folder / "models" / "b.sql").write_text("select 3 as id\n")
    assert manifest.stale_files(project) == ["models/a.sql", "models/b.sql"]
    (folder / "target").mkdir()
    (folder / "target" / "x.sql").write_text("compiled")  # dbt's output is not the project
    assert "target/x.sql" not in manifest.stale_files(project)


def test_dev_and_ci_schema_names_are_safe_identifiers(monkeypatch):
    from elt import develop

    assert develop.schema_name("dev", "Anna.B") == "dev_anna_b"
    assert develop.schema_name("ci", "feature/Fix-#12 orders") == "ci_feature_fix_12_orders"
    assert develop.schema_name("ci", "///") == "ci_unknown"
    assert len(develop.schema_name("ci", "x" * 200)) == 50
    monkeypatch.delenv("ELT_DEV_SCHEMA", raising=False)
    monkeypatch.setenv("ELT_DEV_USER", "Bob Smith")
    assert develop.dev_schema() == "dev_bob_smith"
    monkeypatch.setenv("ELT_DEV_SCHEMA", "sandbox")
    assert develop.dev_schema() == "sandbox"


@pytest.mark.parametrize("schema", ["audit", "audit_staging", "analytics", "analytics_x"])
def test_dev_never_targets_the_pipelines_schemas(schema, monkeypatch):
    from elt import develop

    monkeypatch.delenv("ELT_DBT_SCHEMA", raising=False)
    monkeypatch.delenv("ELT_PUBLISHED_SCHEMA", raising=False)
    with pytest.raises(develop.DevError, match=f"schema '{schema}' belongs to the pipelines"):
        develop.check_schema(schema)
    develop.check_schema("dev_audit")  # a developer's schema may mention it


def test_modified_selection_is_intersected_with_the_pipelines():
    from elt.develop import _selection

    assert _selection([], modified=True) == ["state:modified+"]
    assert _selection(["+marts"], modified=True) == ["state:modified+,+marts"]
    assert _selection(["+marts"], modified=False) == ["+marts"]


def test_the_stored_state_points_published_marts_at_the_published_schema():
    from elt.state import published_view

    manifest = {
        "nodes": {
            "model.p.orders": {
                "name": "orders",
                "alias": "orders",
                "database": "wh",
                "schema": "audit",
            },
            "model.p.stg": {
                "name": "stg",
                "alias": "stg",
                "database": "wh",
                "schema": "audit_staging",
            },
        }
    }
    view = published_view(manifest, [Mart("model.p.orders", "orders", "audit")], "analytics")
    assert view["nodes"]["model.p.orders"]["schema"] == "analytics"
    assert view["nodes"]["model.p.orders"]["relation_name"] == '"wh"."analytics"."orders"'
    assert view["nodes"]["model.p.stg"]["schema"] == "audit_staging"
