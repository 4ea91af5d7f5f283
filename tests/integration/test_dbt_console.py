"""dbt's console in elt's in-process invocations (``elt.dbt.invoke``): the lines dbt's own
console would print at its level, secrets scrubbed, while the file log keeps dbt's debug log.

The project is shaped unlike the demo's: its own profile name, a model that logs and prints a
``DBT_ENV_SECRET_`` value, a warn-severity test that fails, and views built on views.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from elt import dbt
from elt import project as dbt_project

pytestmark = pytest.mark.integration

SECRET = "s3cr3t-console-value"
TIMESTAMPED = re.compile(r"^\d\d:\d\d:\d\d  ")

FILES = {
    "dbt_project.yml": "name: console_check\nprofile: console_profile\nversion: '1.0'\n",
    # dbt allows secret variables only in profiles: the value reaches the model another way
    "models/first.sql": (
        "{{ log('token ' ~ env_var('CONSOLE_ECHO'), info=True) }}\n"
        "{% if execute %}{% do print('printed postgresql://me:' ~ env_var('CONSOLE_ECHO')"
        " ~ '@db/x') %}{% endif %}\n"
        "select 1 as id union all select 2 as id\n"
    ),
    "models/second.sql": "select id from {{ ref('first') }}\n",
    "models/schema.yml": (
        "version: 2\nmodels:\n  - name: second\n    columns:\n      - name: id\n"
        "        data_tests:\n          - accepted_values:\n              arguments:\n"
        "                values: [1]\n              config:\n                severity: warn\n"
    ),
}


@pytest.fixture(scope="module")
def console_env(pg, tmp_path_factory):
    """ELT_HOME, an empty warehouse database, the small project and a dbt secret (whose
    value the model logs through a variable dbt does not know is secret)."""
    home = tmp_path_factory.mktemp("console")
    for name, text in FILES.items():
        (home / "project" / name).parent.mkdir(parents=True, exist_ok=True)
        (home / "project" / name).write_text(text)
    saved = dict(os.environ)
    os.environ.update(
        {
            "ELT_HOME": str(home / "state"),
            "ELT_WAREHOUSE_URL": pg.create_database("console_wh"),
            "DBT_ENV_SECRET_CONSOLE_TOKEN": SECRET,
            "CONSOLE_ECHO": SECRET,
        }
    )
    for name in ("DBT_LOG_LEVEL", "DBT_LOG_LEVEL_FILE"):
        os.environ.pop(name, None)
    try:
        yield home
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _build(home: Path, capsys, **options) -> tuple[dbt.DbtOutcome, list[str], str]:
    """One `dbt build` of the project; its outcome, the console lines and the file log."""
    log = home / "state" / "logs" / "dbt.log"
    log.unlink(missing_ok=True)
    capsys.readouterr()
    outcome = dbt.invoke("build", project=dbt_project.load(home / "project"), **options)
    return outcome, capsys.readouterr().out.splitlines(), log.read_text()


def test_console_shows_dbts_info_lines_scrubbed_and_the_file_log_keeps_debug(console_env, capsys):
    outcome, lines, log = _build(console_env, capsys)

    assert outcome.success, outcome.error
    assert outcome.count("model", "success") == 2
    assert [r.status for r in outcome.warned] == ["warn"]
    text = "\n".join(lines)
    assert SECRET not in text
    assert any(re.search(r"OK created sql view model \S+\.first", line) for line in lines)
    assert any(re.search(r"OK created sql view model \S+\.second", line) for line in lines)
    assert any("WARN 1 accepted_values_second_id" in line for line in lines)
    assert any(line.endswith("token ***") for line in lines)  # log(info=True), scrubbed
    assert "printed postgresql://me:***@db/x" in lines  # print(): no timestamp
    assert any(re.search(r"Done\. PASS=2 WARN=1 ERROR=0", line) for line in lines)
    assert all(TIMESTAMPED.match(line) for line in lines if line and not line.startswith("printed"))
    # debug events (the SQL dbt runs) stay off the console and go to the file log
    assert "create view" not in text
    assert "create view" in log
    assert SECRET not in log


def test_quiet_console_shows_warnings_and_prints_only(console_env, capsys):
    outcome, lines, _ = _build(console_env, capsys, quiet=True)

    assert outcome.count("model", "success") == 2
    text = "\n".join(lines)
    assert "OK created" not in text
    assert "printed postgresql://me:***@db/x" in lines
    assert re.search(r"Warning in test accepted_values_second_id", text)
    assert SECRET not in text
