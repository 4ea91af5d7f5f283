"""Fixtures shared by the reliability tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def dlt_home(tmp_path, monkeypatch) -> Path:
    """dlt pipeline working folders of this test only."""
    home = tmp_path / "dlt"
    monkeypatch.setenv("DLT_DATA_DIR", str(home))
    return home
