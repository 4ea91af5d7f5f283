"""The process environment Prefect needs, set before Prefect is first imported.

Prefect reads its settings (home folder, API URL, telemetry) once, when it is imported, so
every entry point (CLI, deployed flow module, tests) calls :func:`prepare` first.
"""

from __future__ import annotations

import os

from elt import settings

# Prefect settings we always want, whatever the caller's shell says.
_FORCED = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}


def prepare() -> dict[str, str]:
    """Put Prefect's home under ``.elt/`` (unless ``PREFECT_HOME`` is set) and telemetry off.

    Returns the variables that were set. Safe to call many times.
    """
    applied: dict[str, str] = {}
    for key, value in settings.tool_homes().items():
        if key not in os.environ:
            os.environ[key] = value
            applied[key] = value
    os.environ.update(_FORCED)
    applied.update(_FORCED)
    return applied
