"""Only a whole-suite run (`make test`) is recorded for the benchmark's target table."""

from __future__ import annotations

from types import SimpleNamespace

from elt import paths
from tests.helpers.suite_record import _whole_suite


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
