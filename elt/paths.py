"""Where the project and its local state live, resolved once.

The project root is the folder holding ``pipelines.yml`` (``ELT_PROJECT_DIR`` overrides it);
everything the platform writes locally goes under ``.elt/`` in that root (``ELT_HOME``
overrides it, which is how tests get a throwaway state folder).
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent


@cache
def project_root() -> Path:
    """The project folder: ``ELT_PROJECT_DIR``, else the checkout this package lives in."""
    override = os.environ.get("ELT_PROJECT_DIR")
    return Path(override).resolve() if override else _PACKAGE_ROOT


def state_dir() -> Path:
    """The local state folder (``.elt/`` or ``ELT_HOME``); created on first use."""
    override = os.environ.get("ELT_HOME")
    path = Path(override).resolve() if override else project_root() / ".elt"
    path.mkdir(parents=True, exist_ok=True)
    return path


def config_file() -> Path:
    """The default ``pipelines.yml`` (``ELT_CONFIG`` overrides it)."""
    override = os.environ.get("ELT_CONFIG")
    return Path(override).resolve() if override else project_root() / "pipelines.yml"


def dbt_project_dir() -> Path:
    """The dbt project (``dbt_project.yml`` and ``profiles.yml`` live here)."""
    return project_root() / "dbt_project"


def expectations_dir() -> Path:
    """The Great Expectations file context."""
    return project_root() / "expectations"


def suite_record_file() -> Path:
    """Where the last whole-suite test run (`make test`) records its duration (git-ignored);
    the benchmark's target table reads it."""
    return project_root() / ".elt" / "make-test.json"
