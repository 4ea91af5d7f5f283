"""`dbt source freshness` checks the thresholds declared in pipelines.yml (real PostgreSQL).

A scaffolded ``__sources.yml`` (``elt scaffold dbt``'s shape) in a throwaway dbt project,
a raw table whose last dlt load is three hours old, and the thresholds handed to dbt the way
every elt command does it (``elt.settings.tool_env``).
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

from elt import roles, source_freshness
from elt.config import ProjectConfig
from elt.scaffold import RawTable, sources_yml
from tests.helpers.warehouse import rows

pytestmark = pytest.mark.integration

PROFILE = """\
crm:
  target: test
  outputs:
    test:
      type: postgres
      host: "{{ env_var('PGHOST') }}"
      port: "{{ env_var('PGPORT') | as_number }}"
      user: "{{ env_var('PGUSER') }}"
      password: "{{ env_var('DBT_ENV_SECRET_PGPASSWORD') }}"
      dbname: "{{ env_var('PGDATABASE') }}"
      schema: audit
      threads: 1
"""


def _config(source: str, freshness: dict | None) -> ProjectConfig:
    spec = {"type": "sql_database", "credentials": "env:CRM_URL?", "tables": {"leads": {}}}
    if freshness:
        spec["freshness"] = freshness
    return ProjectConfig(sources={source: spec}, pipelines={})


@pytest.fixture
def project(pg, tmp_path: Path):
    """A dbt project over raw_<source>.leads, whose newest load is 3 hours old."""
    source = f"crm{uuid.uuid4().hex[:6]}"
    loaded = int(time.time()) - 3 * 3600
    rows(
        pg.url(),
        f"create schema raw_{source};"
        f" create table raw_{source}.leads (id text, _dlt_load_id text);"
        f" insert into raw_{source}.leads values ('a', '{loaded - 600}'), ('b', '{loaded}');"
        f" create table raw_{source}._dlt_loads"
        " (load_id text, status int, inserted_at timestamptz);"
        f" insert into raw_{source}._dlt_loads values ('{loaded}', 0, to_timestamp({loaded}))",
    )
    # dbt works as the transformer role when elt's roles exist (dlt's loader grants this)
    if rows(pg.url(), "select 1 from pg_roles where rolname = %s", (roles.TRANSFORMER,)):
        rows(
            pg.url(),
            f"grant usage on schema raw_{source} to {roles.TRANSFORMER};"
            f" grant select on all tables in schema raw_{source} to {roles.TRANSFORMER}",
        )
    folder = tmp_path / "crm_dbt"
    (folder / "models" / "staging").mkdir(parents=True)
    (folder / "dbt_project.yml").write_text(
        "name: crm\nversion: '1.0.0'\nprofile: crm\nmodel-paths: [models]\n"
    )
    (folder / "profiles.yml").write_text(PROFILE)
    table = RawTable("leads", [("id", "text"), ("_dlt_load_id", "text")])
    (folder / "models" / "staging" / "__sources.yml").write_text(sources_yml(source, [table]))
    yield source, folder
    rows(pg.url(), f"drop schema raw_{source} cascade")


def _dbt(folder: Path, work: Path, env: dict[str, str], *command: str):
    """``dbt <command>`` in-process on ``folder`` with ``env`` set."""
    from dbt.cli.main import dbtRunner

    argv = [*command, "--project-dir", str(folder), "--profiles-dir", str(folder)]
    argv += ["--target-path", str(work / "target"), "--log-path", str(work / "logs")]
    with pytest.MonkeyPatch.context() as patch:
        for key, value in {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", **env}.items():
            patch.setenv(key, value)
        return dbtRunner().invoke(argv)


def _freshness(pg, folder: Path, config: ProjectConfig, work: Path) -> str:
    """The status dbt gives the raw table leads, thresholds from ``config``."""
    env = {
        "PGHOST": pg.host,
        "PGPORT": str(pg.port),
        "PGUSER": pg.user,
        "DBT_ENV_SECRET_PGPASSWORD": pg.password,
        "PGDATABASE": pg.database,
        **source_freshness.env(config),
    }
    result = _dbt(folder, work, env, "source", "freshness")
    statuses = {r.node.name: str(r.status) for r in result.result.results}
    return statuses["leads"]


def test_a_source_older_than_error_after_is_an_error_for_dbt(pg, project, tmp_path) -> None:
    source, folder = project
    strict = _config(source, {"warn_after": "1h", "error_after": "2h"})
    assert _freshness(pg, folder, strict, tmp_path / "a") == "error"
    # the same data against other thresholds of pipelines.yml: only a warning, then fine
    lenient = _config(source, {"warn_after": "90m", "error_after": "1d"})
    assert _freshness(pg, folder, lenient, tmp_path / "b") == "warn"
    relaxed = _config(source, {"warn_after": "4h"})
    assert _freshness(pg, folder, relaxed, tmp_path / "c") == "pass"


def test_a_source_without_thresholds_is_not_checked(project, tmp_path) -> None:
    source, folder = project
    env = {"PGHOST": "127.0.0.1", "PGPORT": "5432", "PGUSER": "x", "PGDATABASE": "x"}
    env |= {"DBT_ENV_SECRET_PGPASSWORD": "", **source_freshness.env(_config(source, None))}
    result = _dbt(folder, tmp_path, env, "parse")
    assert result.success, result.exception
    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    leads = next(s for s in manifest["sources"].values() if s["name"] == "leads")
    assert not (leads["freshness"] or {}).get("warn_after")


def test_elt_freshness_alerts_and_fails_on_a_source_past_error_after(
    pg, project, tmp_path, monkeypatch
) -> None:
    from typer.testing import CliRunner

    from elt.cli import app
    from tests.helpers.webhook import Webhook

    source, folder = project
    hook = Webhook()
    spec = {
        "version": 1,
        "dbt": {"project_dir": str(folder)},
        "sources": {
            source: {
                "type": "sql_database",
                "credentials": "env:CRM_URL?",
                "tables": {"leads": {}},
                "freshness": {"warn_after": "1h", "error_after": "2h"},
            }
        },
        "pipelines": {
            "crm_daily": {
                "sources": [source],
                "notify": {"on": ["failure", "quality_warning"], "urls": [hook.apprise_url]},
            }
        },
    }
    config_file = tmp_path / "pipelines.yml"
    config_file.write_text(json.dumps(spec))  # JSON is YAML
    monkeypatch.setenv("ELT_CONFIG", str(config_file))
    try:
        result = CliRunner().invoke(app, ["freshness", "crm_daily"])
        received = hook.take()
    finally:
        hook.close()
    assert result.exit_code == 1, result.output
    assert f"{source}.leads" in result.output and "error" in result.output
    assert len(received) == 1
    assert "sources stale (failed)" in received[0]["title"]
    assert (
        f"{source}.leads: error, 0.1 d old (warn after 1 hour, error after 2 hour)"
        in (received[0]["message"])
    )
