"""Record how long a whole-suite run took (`make test`), for the benchmark's target table.

Only a run of the whole suite is recorded (no ``-k``/``-m``/``--lf``, the test root as the
only path), by the controller process (not the xdist workers), in
``elt.paths.suite_record_file()``. ``bench.report`` reads the last record: the issue's target
is on the full suite, so a partial run must never stand in for it.

The record also says where the time went: per pytest-xdist worker the summed test time and
when its last test ended (two workers ending far apart mean the files were shared out badly),
and the slowest test files (setup, call and teardown summed).
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
SLOWEST_FILES = 15


class Tally:
    """Test time per worker and per file, from the reports the controller receives."""

    def __init__(self, started: float):
        self.started = started
        self.workers: dict[str, dict[str, float]] = {}
        self.files: dict[str, float] = {}

    def add(self, report: pytest.TestReport, now: float) -> None:
        """Count one setup/call/teardown report that arrived at ``now`` (monotonic)."""
        node = getattr(report, "node", None)  # the xdist worker it came from
        worker = node.gateway.id if node is not None else "main"
        seen = self.workers.setdefault(worker, {"busy_s": 0.0, "last_end_s": 0.0})
        seen["busy_s"] += report.duration
        seen["last_end_s"] = now - self.started
        path = report.nodeid.split("::")[0]
        self.files[path] = self.files.get(path, 0.0) + report.duration

    def summary(self) -> dict:
        """Rounded figures for the record."""
        slowest = sorted(self.files.items(), key=lambda item: -item[1])[:SLOWEST_FILES]
        return {
            "workers_s": {
                name: {key: round(value, 1) for key, value in figures.items()}
                for name, figures in sorted(self.workers.items())
            },
            "slowest_files_s": [[path, round(seconds, 1)] for path, seconds in slowest],
        }


def _whole_suite(config: pytest.Config) -> bool:
    tests_root = paths.project_root() / "tests"
    chosen = [Path(arg.split("::")[0]).resolve() for arg in config.args]
    narrowed = (
        config.option.keyword or config.option.markexpr or getattr(config.option, "lf", False)
    )
    return chosen == [tests_root] and not narrowed and not hasattr(config, "workerinput")


def pytest_sessionstart(session: pytest.Session) -> None:
    """Remember when the run started and the machine's load then."""
    global _tally
    now = time.monotonic()
    setattr(session.config, _STARTED, (now, os.getloadavg()[0]))
    _tally = Tally(now)


_tally: Tally | None = None  # this process's, from its session start


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Count the report's time for its worker and file."""
    if _tally is not None:
        _tally.add(report, time.monotonic())


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
        **(_tally.summary() if _tally else {}),
    }
    record_file = paths.suite_record_file()
    record_file.parent.mkdir(parents=True, exist_ok=True)
    record_file.write_text(json.dumps(record, indent=2) + "\n")
