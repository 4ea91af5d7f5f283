"""Run a pipeline DAG in this process with ``dag.test()``: tests, benchmarks, ``elt airflow test``.

Two things make this practical with Airflow 3.2:

* ``dag.test()`` needs the DAG serialized in the metadata database first: :func:`load_dagbag`
  parses the DAGs folder like the DAG processor and stores the result.
* ``dag.test()`` builds a new in-process Execution API (a FastAPI app, with its pydantic
  schemas) for every task: measured here at 3–9 s per task, more than the tasks themselves.
  :func:`run_dag` builds it once per process and reuses it; the tasks run the same code.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from elt.subprocesses import run_checked
from orchestration.airflow import compat, environment

MIGRATE_TIMEOUT_S = 300


@dataclass
class DagRunOutcome:
    """What one ``dag.test()`` run did."""

    dag_id: str
    run_id: str
    state: str
    duration_s: float
    task_states: dict[str, str] = field(default_factory=dict)


def configure(metadata_url: str | None = None) -> dict[str, str]:
    """Environment for running DAGs here: base env, and a SQLite metadata DB under
    ``AIRFLOW_HOME`` unless ``metadata_url`` is given. Call before importing Airflow."""
    env = environment.base_env()
    home = Path(env["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = metadata_url or f"sqlite:///{home / 'airflow.db'}"
    os.environ.update(env)
    return env


def migrate_metadata_db(*, force: bool = False) -> float:
    """``airflow db migrate`` in a subprocess with this environment; returns seconds taken.

    Skipped (0.0) when this Airflow version already migrated this database from here.
    """
    import hashlib
    from importlib.metadata import version

    key = f"{os.environ.get('AIRFLOW__DATABASE__SQL_ALCHEMY_CONN', '')}|{version('apache-airflow')}"
    marker = (
        environment.airflow_home() / f".migrated-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    )
    if marker.exists() and not force:
        return 0.0
    started = time.monotonic()
    airflow = Path(sys.executable).with_name("airflow")
    run_checked(
        [str(airflow), "db", "migrate"],
        "airflow db migrate",
        timeout=MIGRATE_TIMEOUT_S,
        env=os.environ.copy(),
    )
    marker.write_text("")
    return time.monotonic() - started


def load_dagbag(folder: Path | None = None, *, sync: bool = True) -> Any:
    """Parse the DAGs folder as the DAG processor does; store the DAGs when ``sync``."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    bag = DagBag(dag_folder=str(folder or environment.DAGS_FOLDER), include_examples=False)
    if sync:
        DagBundlesManager().sync_bundles_to_db()
        sync_bag_to_db(bag, "dags-folder", None)
    return bag


@functools.cache
def _reuse_in_process_api() -> None:
    compat.reuse_in_process_api_server()


def run_dag(dag: Any, *, logical_date: datetime | None = None) -> DagRunOutcome:
    """``dag.test()`` (tasks in this process, one at a time); returns states and wall time."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    _reuse_in_process_api()
    started = time.monotonic()
    kwargs = {"logical_date": logical_date} if logical_date else {}
    dag_run = dag.test(**kwargs)
    duration = time.monotonic() - started
    with create_session() as session:
        rows = session.execute(
            select(TaskInstance.task_id, TaskInstance.state).where(
                TaskInstance.dag_id == dag.dag_id, TaskInstance.run_id == dag_run.run_id
            )
        ).all()
    return DagRunOutcome(
        dag_id=dag.dag_id,
        run_id=dag_run.run_id,
        state=str(dag_run.state),
        duration_s=duration,
        task_states={task_id: str(state) for task_id, state in rows},
    )


def retry_tasks(dag: Any, run_id: str, task_ids: list[str]) -> DagRunOutcome:
    """Clear ``task_ids`` and everything downstream of them in a finished run, then run them
    again in this process, as "Clear → with downstream" in the UI does with a scheduler."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance, clear_task_instances
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState
    from sqlalchemy import select

    _reuse_in_process_api()
    wanted = set(task_ids)
    for task_id in task_ids:
        wanted |= dag.get_task(task_id).get_flat_relative_ids(upstream=False)
    started = time.monotonic()
    with create_session() as session:
        tis = session.scalars(
            select(TaskInstance).where(
                TaskInstance.dag_id == dag.dag_id,
                TaskInstance.run_id == run_id,
                TaskInstance.task_id.in_(wanted),
            )
        ).all()
        clear_task_instances(list(tis), session, dag_run_state=DagRunState.RUNNING)
        session.commit()
        dag_run = session.scalar(
            select(DagRun).where(DagRun.dag_id == dag.dag_id, DagRun.run_id == run_id)
        )
        scheduler_dag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
        # as dag.test() does: the serialized DAG carries no callbacks, the DAG does
        scheduler_dag.on_success_callback = dag.on_success_callback
        scheduler_dag.on_failure_callback = dag.on_failure_callback
        dag_run.dag = scheduler_dag
        for _ in range(10 * len(dag.tasks)):  # the loop of dag.test(), bounded
            if dag_run.state != DagRunState.RUNNING:
                break
            session.expire_all()
            schedulable, _ = dag_run.update_state(session=session)
            for ti in schedulable:
                ti.try_number += 1
                ti.state = TaskInstanceState.SCHEDULED
            session.commit()
            for ti in schedulable:
                compat.run_task_in_process(ti, dag.task_dict[ti.task_id])
        state = str(dag_run.state)
        rows = session.execute(
            select(TaskInstance.task_id, TaskInstance.state).where(
                TaskInstance.dag_id == dag.dag_id, TaskInstance.run_id == run_id
            )
        ).all()
    return DagRunOutcome(
        dag_id=dag.dag_id,
        run_id=run_id,
        state=state,
        duration_s=time.monotonic() - started,
        task_states={task_id: str(task_state) for task_id, task_state in rows},
    )


def describe_dagbag(bag: Any) -> dict[str, Any]:
    """The DAGs and import errors of a DagBag as plain data (for tests in another process)."""
    dags = {}
    for dag_id, dag in bag.dags.items():
        dags[dag_id] = {
            "schedule": str(getattr(dag, "schedule", None)),
            "tags": sorted(dag.tags),
            "catchup": dag.catchup,
            "max_active_runs": dag.max_active_runs,
            "start_date": dag.start_date.isoformat() if dag.start_date else None,
            "tasks": {task.task_id: _describe_task(task) for task in dag.tasks},
        }
    return {"import_errors": {str(k): str(v) for k, v in bag.import_errors.items()}, "dags": dags}


def _describe_task(task: Any) -> dict[str, Any]:
    timeout = task.execution_timeout
    return {
        "type": type(task).__name__,
        "upstream": sorted(task.upstream_task_ids),
        "pool": task.pool,
        "retries": task.retries,
        "retry_delay_s": task.retry_delay.total_seconds(),
        "timeout_s": timeout.total_seconds() if timeout else None,
        "trigger_rule": str(
            task.trigger_rule.value if hasattr(task.trigger_rule, "value") else task.trigger_rule
        ),
        "owner": task.owner,
        "is_teardown": bool(getattr(task, "is_teardown", False)),
        "outlets": sorted(getattr(outlet, "name", str(outlet)) for outlet in task.outlets),
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m orchestration.airflow.testing inspect|run|retry …`` → one JSON line."""
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m orchestration.airflow.testing")
    parser.add_argument("command", choices=["migrate", "inspect", "run", "retry"])
    parser.add_argument("pipeline", nargs="?")
    parser.add_argument("--run-id")
    parser.add_argument("--task", action="append", default=[])
    args = parser.parse_args(argv)
    configure(os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"))
    if args.command == "migrate":
        print(json.dumps({"migrate_s": migrate_metadata_db()}))
        return 0
    from elt import settings

    settings.load_local_env()
    settings.apply_tool_env()
    started = time.monotonic()
    bag = load_dagbag(sync=args.command != "inspect")
    parse_s = time.monotonic() - started
    if args.command == "inspect":
        print(json.dumps({**describe_dagbag(bag), "parse_s": parse_s}))
        return 0
    dag = bag.dags[args.pipeline]
    outcome = run_dag(dag) if args.command == "run" else retry_tasks(dag, args.run_id, args.task)
    print(json.dumps({**outcome.__dict__, "parse_s": parse_s}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
