"""Which task-run log lines of dbt node task runs reach Prefect's handlers."""

from __future__ import annotations

import logging

import pytest

from orchestration.prefect.node_tasks import (
    NODE_TASK_NAME,
    TASK_RUN_LOGGER,
    NodeLifecycleFilter,
    install_node_log_filter,
)


def _record(level: int, task_name: str, module: str, message: str) -> logging.LogRecord:
    record = logging.LogRecord(TASK_RUN_LOGGER, level, f"/x/{module}.py", 1, message, None, None)
    record.task_name = task_name
    return record


@pytest.mark.parametrize(
    ("level", "task_name", "module", "shipped"),
    [
        # a passing node's "Finished in state Completed()": dropped
        (logging.INFO, NODE_TASK_NAME, "task_engine", False),
        (logging.DEBUG, NODE_TASK_NAME, "task_engine", False),
        # a failing node's engine lines: kept
        (logging.ERROR, NODE_TASK_NAME, "task_engine", True),
        (logging.WARNING, NODE_TASK_NAME, "task_engine", True),
        # dbt's own lines for a node (prefect-dbt's runner): kept at every level
        (logging.INFO, NODE_TASK_NAME, "runner", True),
        # the pipeline's steps (dbt_build, publish, …): kept
        (logging.INFO, "dbt_build", "task_engine", True),
    ],
)
def test_only_passing_node_lifecycle_lines_are_dropped(level, task_name, module, shipped):
    record = _record(level, task_name, module, "Finished in state Completed()")
    assert NodeLifecycleFilter().filter(record) is shipped


def test_the_filter_is_installed_once_on_the_task_run_logger():
    logger = logging.getLogger(TASK_RUN_LOGGER)
    install_node_log_filter()
    install_node_log_filter()
    try:
        assert sum(isinstance(f, NodeLifecycleFilter) for f in logger.filters) == 1
        passing = _record(logging.INFO, NODE_TASK_NAME, "task_engine", "Finished in state …")
        failing = _record(logging.ERROR, NODE_TASK_NAME, "task_engine", "Finished in state …")
        assert not logger.filter(passing)
        assert logger.filter(failing)
    finally:
        for f in [f for f in logger.filters if isinstance(f, NodeLifecycleFilter)]:
            logger.removeFilter(f)
