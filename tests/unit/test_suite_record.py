"""Only a whole-suite run (`make test`) is recorded for the benchmark's target table."""

from __future__ import annotations

from types import SimpleNamespace

from elt import paths
from tests.helpers.suite_record import Tally, _whole_suite


def _config(*args: str, keyword: str = "", markexpr: str = "", worker: bool = False):
    config = SimpleNamespace(
        args=list(args), option=SimpleNamespace(keyword=keyword, markexpr=markexpr, lf=False)
    )
    if worker:
        config.workerinput = {"workerid": "gw0"}
    return config


def test_the_whole_suite_is_recorded_by_the_controller_only():
    tests = str(paths.project_root() / "tests")
    assert _whole_suite(_config(tests))
    assert not _whole_suite(_config(tests, worker=True))


def test_a_narrowed_run_is_not_recorded():
    tests = paths.project_root() / "tests"
    assert not _whole_suite(_config(str(tests / "unit")))
    assert not _whole_suite(_config(str(tests), keyword="bench"))
    assert not _whole_suite(_config(str(tests), markexpr="not integration"))
    assert not _whole_suite(_config(str(tests), str(tests / "unit")))


def _report(nodeid: str, duration: float, worker: str | None):
    node = SimpleNamespace(gateway=SimpleNamespace(id=worker)) if worker else None
    return SimpleNamespace(nodeid=nodeid, duration=duration, node=node)


def test_the_tally_sums_time_per_worker_and_file_and_when_each_worker_ended():
    tally = Tally(started=100.0)
    tally.add(_report("tests/a.py::t1", 2.0, "gw0"), now=103.0)
    tally.add(_report("tests/b.py::t1", 5.0, "gw1"), now=106.0)
    tally.add(_report("tests/a.py::t2", 1.5, "gw0"), now=110.25)
    tally.add(_report("tests/c.py::t", 0.5, None), now=111.0)  # no xdist
    summary = tally.summary()
    assert summary["workers_s"] == {
        "gw0": {"busy_s": 3.5, "last_end_s": 10.2},
        "gw1": {"busy_s": 5.0, "last_end_s": 6.0},
        "main": {"busy_s": 0.5, "last_end_s": 11.0},
    }
    assert summary["slowest_files_s"] == [
        ["tests/b.py", 5.0],
        ["tests/a.py", 3.5],
        ["tests/c.py", 0.5],
    ]
