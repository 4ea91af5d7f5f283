"""The project's drop macro: a relation dbt's cache only knows from a view dependency has the
type "external", and dbt's own drop would run `drop external …`; ours drops the view, table
or materialized view it really is (in a throwaway dbt project with the project's macro)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from elt import paths
from tests.helpers.warehouse import rows

pytestmark = pytest.mark.integration

DROP_AS_EXTERNAL = """
{% macro drop_as_external(name) %}
  {% do adapter.drop_relation(api.Relation.create(
      database=target.database, schema='odd schema', identifier=name, type='external')) %}
{% endmacro %}
"""


def _project(folder: Path, pg) -> Path:
    (folder / "macros").mkdir(parents=True)
    shutil.copy(paths.dbt_project_dir() / "macros" / "drop_relation.sql", folder / "macros")
    (folder / "macros" / "drop_as_external.sql").write_text(DROP_AS_EXTERNAL)
    (folder / "dbt_project.yml").write_text("name: drops\nversion: '1.0'\nprofile: drops\n")
    (folder / "profiles.yml").write_text(
        "drops:\n  target: t\n  outputs:\n    t:\n      type: postgres\n"
        f"      host: '{pg.host}'\n      port: {pg.port}\n      user: '{pg.user}'\n"
        f"      password: '{pg.password}'\n      dbname: drops\n      schema: public\n"
        "      threads: 1\n"
    )
    return folder


def test_a_relation_cached_as_external_is_dropped_as_what_it_is(pg, tmp_path: Path):
    url = pg.create_database("drops")
    rows(
        url,
        'create schema "odd schema";'
        ' create table "odd schema".base (id int);'
        ' create view "odd schema"."it\'s a view" as select id from "odd schema".base;'
        ' create materialized view "odd schema".mat as select id from "odd schema".base;'
        ' create table "odd schema".tab (id int); select 1',
    )
    project = _project(tmp_path / "project", pg)
    dbt = str(Path(sys.executable).with_name("dbt"))
    for name in ("it's a view", "mat", "tab", "not there"):
        done = subprocess.run(
            [dbt, "run-operation", "drop_as_external", "--args", f'{{name: "{name}"}}'],
            cwd=project,
            env={"DBT_PROFILES_DIR": str(project), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    left = rows(
        url,
        "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = 'odd schema' and c.relkind in ('r', 'v', 'm') order by 1",
    )
    assert left == [("base",)]
