"""The next day, as the README suggests: `elt down`, later `elt up`, `elt run jaffle_daily` —
the demo's pipeline runs again with no manual step (its API revived, its URLs not stale)."""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from pathlib import Path

import pytest

from elt import paths
from tests.helpers.process_env import run_captured
from tests.helpers.warehouse import DEMO_KEYS

pytestmark = pytest.mark.integration


def _elt(home: Path, *args: str, timeout: float = 600):
    env = {key: value for key, value in os.environ.items() if key not in DEMO_KEYS}
    env.update({"ELT_HOME": str(home), "COLUMNS": "200"})
    env.pop("ELT_WAREHOUSE_PORT", None)
    command = [sys.executable, "-m", "elt.cli", *args]
    return run_captured(command, env, paths.project_root(), timeout=timeout)


def _api_answers(home: Path) -> bool:
    port = (home / "demo" / "api_port").read_text().strip()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
            return json.load(answer).get("service") == "elt-demo-tweets"
    except OSError:
        return False


@pytest.fixture
def demo_home():
    """A demo of its own (warehouse, shop, API) so the session's warehouse is not stopped."""
    home = paths.project_root() / ".elt" / "test-demo-restart"
    yield home
    _elt(home, "down", "--purge", timeout=120)


def test_demo_runs_again_after_down_and_up_without_manual_steps(demo_home):
    made = _elt(demo_home, "demo-data", "--years", "0.03", "--seed", "7", "--force")
    assert made.returncode == 0, made.stdout
    assert "${ELT_WAREHOUSE_PORT}" in (demo_home / "env").read_text()  # no port stored
    port = json.loads((demo_home / "warehouse.json").read_text())["port"]

    down = _elt(demo_home, "down")
    assert down.returncode == 0, down.stdout
    assert not _api_answers(demo_home)
    up = _elt(demo_home, "up")
    assert up.returncode == 0, up.stdout
    assert _api_answers(demo_home), up.stdout  # `elt up` brought the demo API back
    assert json.loads((demo_home / "warehouse.json").read_text())["port"] == port

    # stopped again: `elt run` alone starts the warehouse and what the demo sources need
    assert _elt(demo_home, "down").returncode == 0
    run = _elt(demo_home, "run", "jaffle_daily")
    assert run.returncode == 0, run.stdout[-3000:]
    assert "✓ ingest_social" in run.stdout and "succeeded" in run.stdout
