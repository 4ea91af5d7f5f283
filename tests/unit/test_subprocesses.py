"""The one line a failed program's output is summed up by."""

from __future__ import annotations

from elt.subprocesses import error_line

TRACEBACK = """\
[2026-12-04T15:30:00] INFO - loading
Traceback (most recent call last):
  File "/x/airflow/__main__.py", line 62, in main
    args.func(args)
  File "/x/sqlalchemy/engine/default.py", line 869, in connect
    return self.loaded_dbapi.connect(*cargs, **cparams)
           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
sqlalchemy.exc.OperationalError: (psycopg.OperationalError) connection failed: refused
	Is the server running on that host?
(Background on this error at: https://sqlalche.me/e/21/e3q8)
"""


def test_a_traceback_is_summed_up_by_its_exception_and_continuation_lines():
    assert error_line(TRACEBACK) == (
        "sqlalchemy.exc.OperationalError: (psycopg.OperationalError) connection failed:"
        " refused Is the server running on that host?"
    )


def test_without_a_traceback_the_last_line_counts():
    assert error_line("working\nDag 'nightly' not found\n\n") == "Dag 'nightly' not found"
    assert error_line("") == "no output"
