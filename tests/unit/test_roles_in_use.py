"""Which identity each tool works as: the least-privilege roles when they are in use."""

from __future__ import annotations

import pytest

from elt import roles, settings

ADMIN_URL = "postgresql://elt:admin-pw-123@127.0.0.1:5999/wh"


@pytest.fixture
def state(tmp_path, monkeypatch):
    """An empty state folder, no ELT_ROLES / ELT_LOADER_URL from the shell."""
    monkeypatch.setenv("ELT_HOME", str(tmp_path))
    for name in ("ELT_ROLES", "ELT_LOADER_URL", "ELT_WAREHOUSE_URL"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def _password_files(state) -> None:
    for role in roles.ROLES:
        (state / f"{role}.password").write_text(f"{role}-secret-pw\n")


def test_without_the_roles_every_tool_keeps_the_given_login(state):
    assert not roles.in_use()
    assert roles.loader_url(ADMIN_URL) == ADMIN_URL
    assert settings.tool_env(settings.parse_url(ADMIN_URL))["ELT_DBT_ROLE"] == ""


def test_with_the_roles_dlt_logs_in_as_the_loader_and_dbt_sets_the_transformer(state):
    _password_files(state)
    assert roles.in_use()
    loader = settings.parse_url(roles.loader_url(ADMIN_URL))
    assert (loader.user, loader.password) == ("elt_loader", "elt_loader-secret-pw")
    assert (loader.host, loader.port, loader.database) == ("127.0.0.1", 5999, "wh")
    assert settings.tool_env(settings.parse_url(ADMIN_URL))["ELT_DBT_ROLE"] == "elt_transformer"


def test_elt_roles_switches_them_off_and_an_explicit_loader_url_wins(state, monkeypatch):
    _password_files(state)
    monkeypatch.setenv("ELT_ROLES", "off")
    assert roles.loader_url(ADMIN_URL) == ADMIN_URL
    monkeypatch.setenv("ELT_ROLES", "on")
    monkeypatch.setenv("ELT_LOADER_URL", "postgresql://elt_loader:x-pw-1234@db:5432/wh")
    assert roles.loader_url(ADMIN_URL) == "postgresql://elt_loader:x-pw-1234@db:5432/wh"


def test_roles_on_without_a_loader_login_says_what_to_set(state, monkeypatch):
    monkeypatch.setenv("ELT_ROLES", "on")
    with pytest.raises(RuntimeError, match="set ELT_LOADER_URL") as info:
        roles.loader_url(ADMIN_URL)
    assert "admin-pw-123" not in str(info.value)
