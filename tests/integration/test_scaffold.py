"""`elt scaffold dbt` on the nested events source: the generated staging builds with dbt
(as the transformer role) with every test passing, sqlfluff finds nothing, and a second
scaffold overwrites nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from elt import paths, roles
from elt.config import RestApiSource
from elt.scaffold import ScaffoldError, scaffold
from ingestion.runner import ingest
from tests.helpers.events_api import EventsApi, events
from tests.helpers.warehouse import rows

pytestmark = pytest.mark.integration

DATABASE = "scaffold_test"
TOOL_TIMEOUT_S = 300
STAGING = "models/staging/evscaf"


@pytest.fixture(scope="module")
def loaded(pg, tmp_path_factory) -> str:
    """The nested events source (key: id) loaded into its own database; returns its URL."""
    url = pg.create_database(DATABASE)
    api = EventsApi(events(9), check=lambda r: True)
    source = RestApiSource.model_validate(
        {
            "name": "evscaf",
            "type": "rest_api",
            "base_url": api.url,
            "paginator": {"type": "header_link"},
            "resources": {"events": {"path": "events", "primary_key": "id"}},
        }
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DLT_DATA_DIR", str(tmp_path_factory.mktemp("dlt")))
        patch.setenv("RUNTIME__REQUEST_BACKOFF_FACTOR", "0")
        try:
            ingest(source, destination_url=url)
        finally:
            api.close()
    return url


@pytest.fixture
def project(tmp_path) -> Path:
    """An empty dbt project with the repository's settings, macros and SQL style."""
    root = paths.dbt_project_dir()
    target = tmp_path / "project"
    target.mkdir()
    for name in ("dbt_project.yml", "profiles.yml"):
        shutil.copy(root / name, target / name)
    shutil.copytree(root / "macros", target / "macros")
    style = (paths.project_root() / ".sqlfluff").read_text()
    (target / ".sqlfluff").write_text(
        style.replace("project_dir = dbt_project", "project_dir = .").replace(
            "profiles_dir = dbt_project", "profiles_dir = ."
        )
    )
    return target


def _dbt_env(pg) -> dict[str, str]:
    return {
        "PGHOST": pg.host,
        "PGPORT": str(pg.port),
        "PGUSER": pg.user,
        "DBT_ENV_SECRET_PGPASSWORD": pg.password,
        "PGDATABASE": DATABASE,
        "ELT_DBT_SCHEMA": "audit",
        "ELT_DBT_ROLE": roles.TRANSFORMER if roles.in_use() else "",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DO_NOT_TRACK": "1",
    }


def _run(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """This interpreter with ``args`` in the project folder (dbt, sqlfluff)."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT_S,
    )


def test_scaffolded_staging_builds_lints_and_is_never_overwritten(pg, loaded, project):
    result = scaffold("evscaf", loaded, project)

    names = sorted(path.name for path in result.written)
    assert names == [
        "__sources.yml",
        "stg_evscaf__events.sql",
        "stg_evscaf__events.yml",
        "stg_evscaf__events__payload__items.sql",
        "stg_evscaf__events__payload__items.yml",
        "stg_evscaf__events__payload__tags.sql",
        "stg_evscaf__events__payload__tags.yml",
    ]
    events_yml = (project / STAGING / "stg_evscaf__events.yml").read_text()
    assert "- name: id\n" in events_yml and "          - unique" in events_yml
    items_yml = (project / STAGING / "stg_evscaf__events__payload__items.yml").read_text()
    assert "to: ref('stg_evscaf__events')" in items_yml

    env = {**os.environ, **_dbt_env(pg)}
    build = _run(
        project,
        env,
        "-m",
        "dbt.cli.main",
        "build",
        "--project-dir",
        str(project),
        "--profiles-dir",
        str(project),
    )
    assert build.returncode == 0, build.stdout[-3000:]
    assert "ERROR=0" in build.stdout and "WARN=0" in build.stdout
    assert rows(
        loaded, "select count(*), count(distinct id) from audit_staging.stg_evscaf__events"
    ) == [(9, 9)]
    assert rows(
        loaded, "select count(*) from audit_staging.stg_evscaf__events__payload__items"
    ) == [(18,)]

    lint = _run(project, env, "-m", "sqlfluff", "lint", STAGING)
    assert lint.returncode == 0, lint.stdout[-3000:] + lint.stderr[-2000:]

    mine = project / STAGING / "stg_evscaf__events.sql"
    mine.write_text(mine.read_text() + "-- my change\n")
    again = scaffold("evscaf", loaded, project)
    assert again.written == [] and len(again.kept) == 7
    assert mine.read_text().endswith("-- my change\n")


def test_a_source_not_loaded_yet_is_a_clear_error(loaded, project):
    with pytest.raises(ScaffoldError, match=r"raw_nothing has no tables: .*elt ingest nothing"):
        scaffold("nothing", loaded, project)
