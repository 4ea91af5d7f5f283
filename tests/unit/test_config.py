"""pipelines.yml: the models, and every problem reported with file, line, key path and hint."""

from __future__ import annotations

import textwrap
from datetime import date, timedelta
from pathlib import Path

import pytest

from elt import config, paths
from elt.config import ConfigError, MissingEnvError, Problem

VALID = """\
version: 1
sources:
  shop:
    type: sql_database
    credentials: env:TEST_SHOP_URL
    tables:
      customers: {primary_key: id}
      orders: {primary_key: id, cursor: ordered_at, lookback: 3d}
      events: {cursor: at, write_disposition: append}
      products: {}
  social:
    type: rest_api
    base_url: http://127.0.0.1:9/api
    auth: {type: bearer, token: env:TEST_TOKEN}
    paginator: {type: page_number, total_path: total_pages}
    resources:
      users: {path: users, primary_key: id}
      posts:
        path: "users/{resources.users.id}/posts"
        parent: users
        incremental: {cursor_path: updated_at, param: since, lookback: 1h}
  landing:
    type: filesystem
    bucket_url: s3://landing
    pool: memory
    files:
      supplies: {glob: "supplies/*.csv", format: csv, primary_key: [id, sku]}
      logs: {glob: "logs/*.jsonl", format: jsonl}
pipelines:
  daily:
    schedule: "0 6 * * *"
    sources: [shop, social, landing]
    retries: {count: 2, delay: 90s}
    dbt: {select: "+marts"}
    quality:
      fail_on_quality_issues: false
      rules:
        - {type: not_null, table: orders, column: customer_id, max_null_percentage: 5}
        - {type: row_count, table: raw_shop.orders, min: 1, severity: fail}
    notify: {on: [failure, success], urls: ["json://localhost:8080/hook", "env:TEST_ALERT?"]}
    limits: {max_duration: 2h30m}
  weekly:
    schedule: "@weekly"
    sources: shop
    depends_on: [daily]
    export: {to: s3://lake/marts, models: [orders]}
pools: {database: 3}
"""


@pytest.fixture(autouse=True)
def _run_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Problems show the file relative to the working folder: ``pipelines.yml:<line>``."""
    monkeypatch.chdir(tmp_path)


def write(tmp_path: Path, text: str, name: str = "pipelines.yml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def problems_of(tmp_path: Path, text: str, *, check_env: bool = False) -> list[str]:
    return [str(p) for p in config.validate_file(write(tmp_path, text), check_env=check_env)]


def only_problem(tmp_path: Path, text: str, **kwargs: bool) -> str:
    found = problems_of(tmp_path, text, **kwargs)
    assert len(found) == 1, found
    return found[0]


# --- valid files -----------------------------------------------------------------------------


def test_project_pipelines_yml_loads() -> None:
    project = config.load(paths.project_root() / "pipelines.yml")
    assert set(project.pipelines) >= {"jaffle_daily"}
    daily = project.pipeline("jaffle_daily")
    assert daily.sources == ["shop", "social", "landing"]
    orders = project.sources["shop"].tables["orders"]
    assert (orders.cursor, orders.lookback, orders.reconcile) == (
        "updated_at",
        timedelta(minutes=10),
        "per_run",
    )
    assert project.sources["social"].resources["tweets"].primary_key == ["id"]
    assert daily.notify.on == ["failure", "quality_warning"]  # "on" is not read as a boolean


def test_models_and_defaults(tmp_path: Path) -> None:
    project = config.load(write(tmp_path, VALID))
    shop, social, landing = (project.sources[name] for name in ("shop", "social", "landing"))
    assert (shop.name, shop.dataset, shop.backend, shop.pool_name) == (
        "shop",
        "raw_shop",
        "adbc",
        "database",
    )
    tables = shop.tables
    assert [tables[t].disposition for t in ("customers", "orders", "events", "products")] == [
        "merge",
        "merge",
        "append",
        "replace",
    ]
    assert social.resources["posts"].incremental.lookback == timedelta(hours=1)
    assert landing.files["supplies"].disposition == "merge"
    assert landing.files["logs"].disposition == "append"
    assert landing.pool_name == "memory"
    daily = project.pipelines["daily"]
    assert daily.retries.delay == timedelta(seconds=90)
    assert daily.dbt.select == ["+marts"]
    assert daily.quality.on_failure == "warn"
    rules = daily.quality.rules
    assert [(r.name, r.severity) for r in rules] == [
        ("not_null_orders_customer_id", "warn"),
        ("row_count_raw_shop_orders", "fail"),
    ]
    assert daily.limits.max_duration == timedelta(hours=2, minutes=30)
    assert (daily.owner, daily.start_date, daily.max_active_runs) == (
        "data-team",
        date(2026, 1, 1),
        1,
    )
    assert project.pipelines["weekly"].sources == ["shop"]
    assert project.pools["database"] == 3 and project.pools["api"] == 10
    assert project.path == tmp_path / "pipelines.yml"


def test_default_path_comes_from_elt_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ELT_CONFIG", str(write(tmp_path, VALID, "other.yml")))
    assert set(config.load().pipelines) == {"daily", "weekly"}


def test_env_refs_and_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = config.load(write(tmp_path, VALID))
    assert config.env_refs(project) == ["TEST_ALERT", "TEST_SHOP_URL", "TEST_TOKEN"]
    assert config.env_refs(project, required_only=True) == ["TEST_SHOP_URL", "TEST_TOKEN"]
    monkeypatch.delenv("TEST_ALERT", raising=False)
    monkeypatch.setenv("TEST_TOKEN", "s3cr3t")
    assert config.resolve_env("env:TEST_ALERT?") is None
    assert config.resolve_env("env:TEST_TOKEN") == "s3cr3t"
    assert config.resolve_env("env:TEST_TOKEN?") == "s3cr3t"
    assert config.resolve_env("plain") == "plain"
    assert config.resolve_env(None) is None
    with pytest.raises(MissingEnvError) as error:
        config.resolve_env("env:TEST_ALERT")
    assert "TEST_ALERT is not set" in str(error.value) and "export" in str(error.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("5m", timedelta(minutes=5)),
        ("1h", timedelta(hours=1)),
        ("2h30m", timedelta(hours=2, minutes=30)),
        ("3d", timedelta(days=3)),
        (45, timedelta(seconds=45)),
        ("120", timedelta(seconds=120)),
    ],
)
def test_parse_duration(text: str | int, expected: timedelta) -> None:
    assert config.parse_duration(text) == expected


@pytest.mark.parametrize("text", ["5x", "", "m5", "1.5h", "-3s", True])
def test_parse_duration_rejects(text: object) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        config.parse_duration(text)


def test_unknown_pipeline_suggests_a_name(tmp_path: Path) -> None:
    project = config.load(write(tmp_path, VALID))
    with pytest.raises(KeyError, match="did you mean 'daily'"):
        project.pipeline("dayly")


# --- one problem per bad input ---------------------------------------------------------------

PIPE = "pipelines:\n  p:\n    sources: [shop]\n"
SHOP = "sources:\n  shop:\n    type: sql_database\n    credentials: env:X\n    tables: {t: {}}\n"


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    text = SHOP + 'pipelines:\n  p:\n    sources: [shop]\n    shedule: "@daily"\n'
    assert only_problem(tmp_path, text) == (
        "pipelines.yml:9: pipelines.p.shedule: unknown key 'shedule' "
        "(hint: did you mean 'schedule'?)"
    )


def test_unknown_key_inside_a_source_type(tmp_path: Path) -> None:
    text = SHOP.replace("tables:", "tabels: {}\n    tables:")
    assert "sources.shop.tabels: unknown key 'tabels' (hint: did you mean 'tables'?)" in (
        only_problem(tmp_path, text)
    )


def test_wrong_type(tmp_path: Path) -> None:
    text = SHOP + PIPE + "    max_active_runs: many\n    catchup: maybe\n"
    assert problems_of(tmp_path, text) == [
        "pipelines.yml:9: pipelines.p.max_active_runs: expected a whole number (got 'many')",
        "pipelines.yml:10: pipelines.p.catchup: expected true or false (got 'maybe')",
    ]


def test_bad_cron(tmp_path: Path) -> None:
    problem = only_problem(tmp_path, SHOP + PIPE + '    schedule: "61 * * * *"\n')
    assert problem.startswith("pipelines.yml:9: pipelines.p.schedule: '61 * * * *' is not a valid")
    assert "hint: use 5 fields" in problem and "@daily" in problem


def test_bad_schedule_preset(tmp_path: Path) -> None:
    problem = only_problem(tmp_path, SHOP + PIPE + '    schedule: "@dayly"\n')
    assert "unknown schedule preset '@dayly' (hint: did you mean '@daily'?)" in problem


def test_bad_duration(tmp_path: Path) -> None:
    problem = only_problem(tmp_path, SHOP + PIPE + "    retries: {count: 1, delay: 5 minutes}\n")
    assert problem == (
        "pipelines.yml:9: pipelines.p.retries.delay: '5 minutes' is not a duration "
        "(hint: write it as 90s, 5m, 1h, 2h30m, 3d or a number of seconds)"
    )


def test_unknown_source_in_pipeline(tmp_path: Path) -> None:
    text = SHOP + "pipelines:\n  p:\n    sources: [shop, shp]\n"
    assert only_problem(tmp_path, text) == (
        "pipelines.yml:8: pipelines.p.sources[1]: unknown source 'shp' (hint: did you mean 'shop'?)"
    )


def test_missing_env_var_is_named_with_its_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("X", raising=False)
    problem = only_problem(tmp_path, SHOP + PIPE, check_env=True)
    assert problem.startswith(
        "pipelines.yml:4: sources.shop.credentials: environment variable X is not set"
    )
    assert "export X=" in problem
    monkeypatch.setenv("X", "postgresql://u:hunter2@h/db")
    assert problems_of(tmp_path, SHOP + PIPE, check_env=True) == []
    assert config.validate_file(write(tmp_path, SHOP + PIPE), check_env=False) == []


def test_literal_secret_is_rejected_without_echoing_it(tmp_path: Path) -> None:
    text = SHOP.replace("env:X", "postgresql://u:hunter2@db/shop") + PIPE
    problem = only_problem(tmp_path, text)
    assert problem.startswith(
        "pipelines.yml:4: sources.shop.credentials: a literal secret is not allowed here"
    )
    assert "env:NAME" in problem and "hunter2" not in problem


def test_literal_token_and_secret_notify_url(tmp_path: Path) -> None:
    text = (
        "sources:\n  api:\n    type: rest_api\n    base_url: https://u:pw1234@api.test\n"
        "    auth: {type: api_key, api_key: abc123}\n    resources: {r: {path: r}}\n"
        "pipelines:\n  p:\n    sources: [api]\n"
        '    notify: {urls: ["slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ"]}\n'
    )
    found = problems_of(tmp_path, text)
    assert found == [
        "pipelines.yml:4: sources.api.base_url: this URL carries a user:password "
        "(hint: put the whole URL in the environment and write env:NAME, or declare the "
        "credential under auth:)",
        "pipelines.yml:5: sources.api.auth.api_key: a literal secret is not allowed here "
        "(hint: put secrets in the environment and reference them as env:NAME)",
        "pipelines.yml:10: pipelines.p.notify.urls[0]: this notification URL looks like it "
        "contains a password or token (hint: put it in the environment and reference it as "
        "env:NAME)",
    ]
    assert not any("pw1234" in p or "abc123" in p or "TIiajk" in p for p in found)


def test_depends_on_cycle(tmp_path: Path) -> None:
    text = SHOP + (
        "pipelines:\n  a: {sources: [shop], depends_on: [b]}\n"
        "  b: {sources: [shop], depends_on: [c]}\n  c: {sources: [shop], depends_on: [a, zz]}\n"
    )
    assert problems_of(tmp_path, text) == [
        "pipelines.yml:7: pipelines.a.depends_on: pipelines depend on each other in a cycle: "
        "a -> b -> c -> a (hint: remove one of these depends_on entries)",
        "pipelines.yml:9: pipelines.c.depends_on[1]: unknown pipeline 'zz' "
        "(hint: declared pipelines: a, b, c)",
    ]


def test_merge_without_primary_key(tmp_path: Path) -> None:
    text = SHOP.replace("{t: {}}", "{t: {write_disposition: merge}}") + PIPE
    assert only_problem(tmp_path, text) == (
        "pipelines.yml:5: sources.shop.tables.t.write_disposition: write_disposition merge needs "
        "a primary_key (hint: add primary_key: <column> or use write_disposition: append / replace)"
    )


def test_cursor_with_replace(tmp_path: Path) -> None:
    text = SHOP.replace("{t: {}}", "{t: {cursor: updated_at}}") + PIPE
    assert "sources.shop.tables.t.cursor: a cursor is useless with write_disposition replace" in (
        only_problem(tmp_path, text)
    )


def test_deletes_need_a_merge_key(tmp_path: Path) -> None:
    text = SHOP.replace("{t: {}}", "{t: {reconcile: daily}}") + PIPE
    assert "sources.shop.tables.t.reconcile: reconcile needs write_disposition merge" in (
        only_problem(tmp_path, text)
    )
    text = SHOP.replace("{t: {}}", "{t: {hard_delete: is_deleted}}") + PIPE
    assert "sources.shop.tables.t.hard_delete: hard_delete needs write_disposition merge" in (
        only_problem(tmp_path, text)
    )
    text = SHOP.replace("{t: {}}", "{t: {primary_key: id, reconcile: hourly}}") + PIPE
    assert "reconcile" in only_problem(tmp_path, text)


def test_invalid_names(tmp_path: Path) -> None:
    text = SHOP.replace("shop:", "my__shop:").replace("{t: {}}", "{Order-Lines: {}}")
    text += "pipelines:\n  Daily:\n    sources: [my__shop]\n"
    found = problems_of(tmp_path, text)
    assert found[0] == (
        "pipelines.yml:2: sources.my__shop: 'my__shop' contains '__' (hint: dlt uses '__' to "
        "separate names, so pipeline state cannot be restored; use a single '_')"
    )
    assert found[1].startswith(
        "pipelines.yml:5: sources.my__shop.tables.Order-Lines: 'Order-Lines' is not a valid name"
    )
    assert found[2].startswith("pipelines.yml:7: pipelines.Daily: 'Daily' is not a valid name")


def test_sql_injection_in_a_rule_is_rejected(tmp_path: Path) -> None:
    text = (
        SHOP
        + PIPE
        + (
            "    quality:\n      rules:\n"
            '        - {type: unique, table: orders, column: "id; drop table orders"}\n'
        )
    )
    assert only_problem(tmp_path, text).startswith(
        "pipelines.yml:11: pipelines.p.quality.rules[0].column: 'id; drop table orders' is not "
        "a valid SQL identifier"
    )


def test_rule_requirements(tmp_path: Path) -> None:
    text = (
        SHOP
        + PIPE
        + (
            "    quality:\n      rules:\n"
            "        - {type: range, table: orders, column: amount}\n"
            "        - {type: not_null, table: orders}\n"
            "        - {type: sql, table: orders}\n"
        )
    )
    assert [p.split(": ", 2)[1:] for p in problems_of(tmp_path, text)] == [
        [
            "pipelines.p.quality.rules[0]",
            "rule type range needs min or max (hint: add min: and/or max:)",
        ],
        [
            "pipelines.p.quality.rules[1]",
            "rule type not_null needs a column (hint: add column: <name>)",
        ],
        [
            "pipelines.p.quality.rules[2]",
            "rule type sql needs the query in 'sql' "
            "(hint: add sql: select count(*) from ... and expected: <value>)",
        ],
    ]


def test_yaml_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    problem = only_problem(tmp_path, "sources:\n  shop: {type: sql_database\npipelines: {}\n")
    assert problem.startswith("pipelines.yml:3: YAML syntax error at line 3, column 10:")
    assert "while parsing a flow mapping at line 2, column 9" in problem


def test_file_not_found(tmp_path: Path) -> None:
    problems = config.validate_file(tmp_path / "nope.yml")
    assert [(p.line, p.message, p.hint) for p in problems] == [
        (None, "file not found", "check the path given with --file")
    ]
    with pytest.raises(ConfigError, match=r"nope\.yml: file not found"):
        config.load(tmp_path / "nope.yml")


def test_empty_file(tmp_path: Path) -> None:
    assert only_problem(tmp_path, "# nothing yet\n").endswith(
        "pipelines.yml: the file is empty (hint: start from the example pipelines.yml in the "
        "project root)"
    )


def test_unknown_source_type_lists_valid_ones(tmp_path: Path) -> None:
    text = "sources:\n  shop:\n    type: postgres\n    tables: {t: {}}\n" + PIPE
    assert only_problem(tmp_path, text) == (
        "pipelines.yml:3: sources.shop.type: unknown source type 'postgres': valid types are "
        "'sql_database', 'rest_api', 'filesystem', 'dlt'"
    )


def test_unknown_pool(tmp_path: Path) -> None:
    text = SHOP + "    pool: databse\n" + PIPE + "    pool: spark\n"
    assert problems_of(tmp_path, text) == [
        "pipelines.yml:6: sources.shop.pool: unknown pool 'databse' "
        "(hint: did you mean 'database'?)",
        "pipelines.yml:10: pipelines.p.pool: unknown pool 'spark' "
        "(hint: declare it under pools: (spark: <slots>))",
    ]


def test_rest_source_requirements(tmp_path: Path) -> None:
    text = (
        "sources:\n  api:\n    type: rest_api\n    base_url: http://127.0.0.1:9\n"
        "    auth: {type: http_basic, username: me}\n    paginator: {type: json_link}\n"
        "    resources:\n      a: {path: a, parent: b}\n      b: {path: b, parent: a}\n"
        "      c: {path: c, parent: d}\n" + PIPE.replace("shop", "api")
    )
    assert [p.split(": ", 2)[1:] for p in problems_of(tmp_path, text)] == [
        [
            "sources.api.auth.password",
            "auth type http_basic needs 'password' (hint: add password: env:NAME)",
        ],
        [
            "sources.api.paginator.next_url_path",
            "paginator type json_link needs 'next_url_path' (hint: add next_url_path: ...)",
        ],
        [
            "sources.api.resources.a.parent",
            "resource parents form a cycle: a -> b -> a "
            "(hint: a child resource cannot be its own ancestor)",
        ],
        [
            "sources.api.resources.c.parent",
            "resource 'c' has unknown parent 'd' (hint: parent must be one of: a, b, c)",
        ],
    ]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = (
        "sources:\n  shop:\n    type: sql_database\n    credentials: env:X\n"
        "    tables: {t: {lookback: forever}}\n  files:\n    type: filesystem\n"
        "    bucket_url: ftp://host/x\n    files: {}\n"
        "pipelines:\n  p:\n    sources: [shop, files, api]\n    publish: yes\n"
        "    export: {to: s3://lake, models: []}\n"
        "pools: {database: 0}\nextra: 1\nversion: 2\n"
    )
    found = problems_of(tmp_path, text)
    assert [p.split(": ", 1)[0] for p in found] == [
        f"pipelines.yml:{n}" for n in (5, 8, 9, 12, 13, 14, 15, 16, 17)
    ]
    joined = "\n".join(found)
    for expected in (
        "sources.shop.tables.t.lookback: 'forever' is not a duration",
        "sources.files.bucket_url: unsupported location scheme 'ftp://'",
        "sources.files.files: must not be empty",
        "pipelines.p.sources[2]: unknown source 'api'",
        "pipelines.p.publish: 'yes' is not allowed: use one of 'write_audit_publish' or 'none'",
        "pipelines.p.export.models: must not be empty",
        "pools.database: pool 'database' needs at least 1 slot",
        "extra: unknown key 'extra' (hint: allowed keys: dbt, pipelines, pools, sources, version)",
        "version: unsupported version 2 (hint: this elt reads version: 1)",
    ):
        assert expected in joined
    with pytest.raises(ConfigError) as error:
        config.load(tmp_path / "pipelines.yml")
    assert str(error.value).splitlines() == found
    assert len(error.value.problems) == 9


def test_quality_switch_must_agree(tmp_path: Path) -> None:
    text = SHOP + PIPE + "    quality: {fail_on_quality_issues: true, on_failure: warn}\n"
    assert "pipelines.p.quality.fail_on_quality_issues: fail_on_quality_issues contradicts" in (
        only_problem(tmp_path, text)
    )


def test_duplicate_key_and_name_key(tmp_path: Path) -> None:
    text = SHOP + "    name: other\n" + PIPE + "    sources: [shop]\n"
    assert problems_of(tmp_path, text) == [
        "pipelines.yml:6: sources.shop.name: unknown key 'name' (hint: the name is the key under "
        "sources: ('shop'); remove 'name')",
        "pipelines.yml:10: pipelines.p.sources: key given twice (hint: keep only one)",
    ]


def test_problem_format() -> None:
    problem = Problem("pipelines.yml", 14, "sources.shop.tables.orders.cursor", "bad", "fix it")
    assert str(problem) == "pipelines.yml:14: sources.shop.tables.orders.cursor: bad (hint: fix it)"
    assert str(Problem("p.yml", None, "", "file not found")) == "p.yml: file not found"


def test_wrong_shapes_and_duplicate_rule_names(tmp_path: Path) -> None:
    text = (
        "sources:\n  shop: postgres\n  other:\n    type: sql_database\n    credentials: 5\n"
        "    tables: {t: {}}\npipelines:\n  p:\n    sources: [shop]\n    quality:\n      rules:\n"
        "        - {type: unique, table: a, column: b}\n"
        "        - {type: unique, table: a, column: b}\n"
    )
    assert problems_of(tmp_path, text) == [
        "pipelines.yml:2: sources.shop: expected a mapping (key: value lines) (got 'postgres')",
        "pipelines.yml:5: sources.other.credentials: expected text (got number)",
        "pipelines.yml:11: pipelines.p.quality.rules: two rules are named unique_a_b "
        "(hint: give one of them a distinct name: ...)",
    ]


def test_sql_injection_in_key_and_cursor_columns_is_refused(tmp_path):
    path = tmp_path / "pipelines.yml"
    path.write_text(
        "sources:\n"
        "  db:\n"
        "    type: sql_database\n"
        "    credentials: env:DB_URL\n"
        "    tables:\n"
        '      orders: {primary_key: "id) or 1=1 --", cursor: "x;drop table y"}\n'
    )
    problems = [str(p) for p in config.validate_file(path, check_env=False)]
    assert any(
        "sources.db.tables.orders.primary_key[0]: 'id) or 1=1 --' is not a valid SQL identifier"
        in p
        for p in problems
    ), problems
    assert any("'x;drop table y' is not a valid SQL identifier" in p for p in problems), problems
