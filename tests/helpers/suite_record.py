"""Record how long a whole-suite run took (`make test`), for the benchmark's target table.

Only a run of the whole suite is recorded (no ``-k``/``-m``/``--lf``, the test root as the
only path), by the controller process (not the xdist workers), in
``elt.paths.suite_record_file()``. ``bench.report`` reads the last record: the issue's target
is on the full suite, so a partial run must never stand in for it.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from elt import paths

_STARTED = "_suite_record_started"


def _whole_suite(config: pytest.Config) -> bool:
    tests_root = paths.project_root() / "tests"
    chosen = [Path(arg.split("::")[0]).resolve() for arg in config.args]
    narrowed = (
        config.option.keyword or config.option.markexpr or getattr(config.option, "lf", False)
    )
    return chosen == [tests_root] and not narrowed and not hasattr(config, "workerinput")


def pytest_sessionstart(session: pytest.Session) -> None:
    """Remember when the run started and the machine's load then."""
    setattr(session.config, _STARTED, (time.monotonic(), os.getloadavg()[0]))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Write the record of a whole-suite run."""
    started = getattr(session.config, _STARTED, None)
    if started is None or not _whole_suite(session.config):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    stats = getattr(reporter, "stats", {})
    record = {
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - started[0], 1),
        "passed": len(stats.get("passed", [])),
        "failed": len(stats.get("failed", [])) + len(stats.get("error", [])),
        "exit_status": int(exitstatus),
        "workers": getattr(session.config.option, "numprocesses", None) or 0,
        "load_average_start": round(started[1], 2),
        "load_average_end": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }
    record_file = paths.suite_record_file()
    record_file.parent.mkdir(parents=True, exist_ok=True)
    record_file.write_text(json.dumps(record, indent=2) + "\n")
