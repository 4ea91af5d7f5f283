"""measure_step: every failure of a step is recorded, even one that is not an Exception."""

from __future__ import annotations

import pytest

from elt.lifecycle import measure_step
from elt.spec import Step

STEP = Step(id="ingest_shop", kind="ingest", source="shop")


class PanicException(BaseException):
    """What a Rust extension (connectorx through pyo3) raises: not an Exception."""


def _panics():
    raise PanicException("called `Result::unwrap()` on an `Err` value: Connection reset")


def test_a_panic_in_a_step_is_recorded_as_its_failure():
    record, error = measure_step(_panics, STEP)
    assert isinstance(error, PanicException)
    assert record.status == "failed" and record.step_id == "ingest_shop"
    assert "Connection reset" in record.detail["error"]


def test_a_successful_step_records_rows_and_detail():
    record, error = measure_step(lambda: (42, {"tables": 3}), STEP)
    assert error is None
    assert (record.status, record.rows, record.detail) == ("succeeded", 42, {"tables": 3})
    assert record.peak_rss_mb > 0 and record.finished_at >= record.started_at


def test_ctrl_c_is_not_swallowed():
    def interrupted():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        measure_step(interrupted, STEP)
