"""Connection settings: URL parsing, masking, the tool environment, the local env file."""

from __future__ import annotations

import json
import stat

import pytest

from elt import paths, settings
from elt.redact import redact, redactor


def test_parse_url_and_mask():
    conn = settings.parse_url("postgresql://loader:s%40cret@db.internal:6543/wh")
    assert (conn.host, conn.port, conn.user, conn.password, conn.database) == (
        "db.internal",
        6543,
        "loader",
        "s@cret",
        "wh",
    )
    assert conn.display_url() == "postgresql://loader:***@db.internal:6543/wh"
    assert conn.url("other", driver="postgresql+psycopg2").endswith("@db.internal:6543/other")
    assert "s%40cret" in conn.url()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u:p@h/db", "must be a postgresql:// URL"),
        ("postgresql://u@h/db", "has no password"),
        ("postgresql://u:p@h/", "has no database"),
    ],
)
def test_parse_url_errors_name_what_is_missing(url, message):
    with pytest.raises(settings.WarehouseUrlError, match=message) as info:
        settings.parse_url(url)
    assert "ELT_WAREHOUSE_URL" in str(info.value)


HOMES = ("AIRFLOW_HOME", "PREFECT_HOME", "DLT_DATA_DIR", "AIRFLOW__COSMOS__CACHE_DIR")


def test_tool_env_puts_every_home_under_state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ELT_HOME", str(tmp_path))
    for key in HOMES:
        monkeypatch.delenv(key, raising=False)
    conn = settings.parse_url("postgresql://u:pw-123456@127.0.0.1:5999/wh")
    env = settings.tool_env(conn)
    for key in HOMES:
        assert env[key].startswith(str(tmp_path))
    assert env["PGPORT"] == "5999" and env["DBT_ENV_SECRET_PGPASSWORD"] == "pw-123456"
    assert env["RUNTIME__DLTHUB_TELEMETRY"] == "false"
    pgpass = tmp_path / "pgpass"
    assert pgpass.read_text() == "127.0.0.1:5999:*:u:pw-123456\n"
    assert stat.S_IMODE(pgpass.stat().st_mode) == 0o600


def test_local_env_file_never_overrides_the_real_environment(tmp_path, monkeypatch):
    path = settings.write_local_env(
        {"SHOP_DB_URL": "postgresql://a:b@h/shop", "X_ONE": "1"}, tmp_path / "env"
    )
    settings.write_local_env({"X_TWO": "2"}, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    monkeypatch.setenv("X_ONE", "from-shell")
    monkeypatch.delenv("X_TWO", raising=False)
    monkeypatch.delenv("SHOP_DB_URL", raising=False)
    settings.load_local_env(path)
    import os

    assert os.environ["X_ONE"] == "from-shell"
    assert os.environ["X_TWO"] == "2"
    assert os.environ["SHOP_DB_URL"] == "postgresql://a:b@h/shop"


def test_redact_hides_url_passwords_and_secret_env_values(monkeypatch):
    monkeypatch.setenv("SOCIAL_API_TOKEN", "tok-abcdef-123")
    text = "failed: postgresql://shop_app:hunter22@127.0.0.1/shop with token tok-abcdef-123"
    cleaned = redact(text)
    assert "hunter22" not in cleaned and "tok-abcdef-123" not in cleaned
    assert "postgresql://shop_app:***@127.0.0.1/shop" in cleaned


def test_tool_env_keeps_homes_a_deployment_already_set(tmp_path, monkeypatch):
    monkeypatch.setenv("ELT_HOME", str(tmp_path))
    monkeypatch.setenv("AIRFLOW_HOME", "/opt/airflow")
    env = settings.tool_env(settings.parse_url("postgresql://u:pw-123456@h:5432/wh"))
    assert env["AIRFLOW_HOME"] == "/opt/airflow"


def test_a_url_on_the_embedded_warehouse_is_stored_with_a_port_placeholder(tmp_path, monkeypatch):
    monkeypatch.setenv("ELT_HOME", str(tmp_path))
    monkeypatch.delenv("ELT_WAREHOUSE_URL", raising=False)
    monkeypatch.delenv("ELT_WAREHOUSE_PORT", raising=False)
    monkeypatch.delenv("SHOP_DB_URL", raising=False)
    monkeypatch.delenv("OTHER_DB_URL", raising=False)
    (tmp_path / "warehouse.json").write_text('{"port": 6001}')
    stored = settings.with_port_placeholder("postgresql://shop_app:p%3Aw@127.0.0.1:6001/shop")
    assert stored == "postgresql://shop_app:p%3Aw@127.0.0.1:${ELT_WAREHOUSE_PORT}/shop"
    other = "postgresql://u:p@127.0.0.1:7000/db"  # another server: kept as it is
    assert settings.with_port_placeholder(other) == other
    settings.write_local_env({"SHOP_DB_URL": stored, "OTHER_DB_URL": other})
    # the warehouse now listens elsewhere (ELT_WAREHOUSE_PORT): the URL follows it
    monkeypatch.setenv("ELT_WAREHOUSE_PORT", "6002")
    settings.load_local_env()
    import os

    assert os.environ["SHOP_DB_URL"] == "postgresql://shop_app:p%3Aw@127.0.0.1:6002/shop"
    assert os.environ["OTHER_DB_URL"] == other


def test_redact_of_nothing_is_nothing():
    assert redact("") == ""


def test_a_redactor_hides_extra_values_and_the_secrets_of_when_it_was_made(monkeypatch):
    monkeypatch.setenv("SOCIAL_API_TOKEN", "tok-abcdef-123")
    scrub = redactor(["pw1", " "])  # short values too (dbt's secrets); blank ones never
    monkeypatch.setenv("SOCIAL_API_TOKEN", "tok-changed-456")
    text = "token tok-abcdef-123, pw1 at postgresql://u:hunter22@h/db"
    assert scrub(text) == "token ***, *** at postgresql://u:***@h/db"
    assert scrub("a b") == "a b"


def test_freshness_in_the_tool_env_follows_edits_of_pipelines_yml(tmp_path, monkeypatch):
    """Validated once per version of the file (every orchestrated task asks), never stale."""
    config = tmp_path / "pipelines.yml"
    text = (paths.project_root() / "pipelines.yml").read_text()
    config.write_text(text)
    monkeypatch.setenv("ELT_CONFIG", str(config))
    monkeypatch.setenv("ELT_HOME", str(tmp_path))
    conn = settings.parse_url("postgresql://u:pw-123456@h:5432/wh")
    before = json.loads(settings.tool_env(conn)["ELT_SOURCE_FRESHNESS"])
    assert before["shop"]["warn_after"] == {"count": 1, "period": "day"}
    assert settings.tool_env(conn)["ELT_SOURCE_FRESHNESS"] == json.dumps(before, sort_keys=True)
    config.write_text(
        text.replace("freshness: {warn_after: 1d,", "freshness: {warn_after: 12h,", 1)
    )
    after = json.loads(settings.tool_env(conn)["ELT_SOURCE_FRESHNESS"])
    assert after["shop"]["warn_after"] == {"count": 12, "period": "hour"}
    config.write_text("version: [")  # broken: no thresholds (the command reading it reports)
    assert "ELT_SOURCE_FRESHNESS" not in settings.tool_env(conn)
