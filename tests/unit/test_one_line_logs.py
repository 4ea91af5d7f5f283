"""Without --verbose, log records are one line: dlt's error records (which repeat the raised
error with a traceback) are dropped, everything else is cut to its first line."""

from __future__ import annotations

import io
import logging
import sys

from ingestion.errors import OneLineLogs


def _emit(name: str, level: int, message: str, *, with_exception: bool = False) -> str:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(OneLineLogs())
    exc_info = None
    if with_exception:
        try:
            raise ValueError("boom")
        except ValueError:
            exc_info = sys.exc_info()
    record = logging.LogRecord(name, level, __file__, 1, message, None, exc_info)
    handler.handle(record)
    return out.getvalue()


def test_dlt_errors_are_dropped():
    assert _emit("dlt", logging.ERROR, "Terminal exception in job\nTraceback ...\n  File x") == ""


def test_other_records_are_one_line_without_traceback():
    text = _emit("ingestion", logging.WARNING, "first line\nsecond line", with_exception=True)
    assert text == "first line\n"
    assert _emit("dlt", logging.WARNING, "Column(s) with NOT NULL\n") == "Column(s) with NOT NULL\n"
