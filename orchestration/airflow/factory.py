"""One Airflow DAG per pipeline in ``pipelines.yml``, built from the orchestrator-agnostic plan.

    start_run ─► ingest.<source> … ─► dbt (Cosmos: producer ─► one task per node) ─►
    quality_gate ─► publish ─► export                 notify (teardown: runs whatever failed)

Schedule, owner, tags, start date, catchup, max active runs, retries and retry delay (per
source too), pools and execution timeouts all come from the YAML through ``elt.spec.plan``.
Each published mart is an Airflow asset (``elt.<schema>.<mart>``), and so is the pipeline's
publish as a whole (``elt.published.<pipeline>``): a pipeline with ``depends_on`` and no
schedule runs when the pipelines it depends on have published.
"""

from __future__ import annotations

import functools
import logging
from datetime import UTC, datetime
from typing import Any

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, Asset, TaskGroup

from elt import config as elt_config
from elt import project as dbt_project
from elt import settings
from elt.config import Pipeline, ProjectConfig
from elt.project import DbtProjectError
from elt.spec import Plan, Step, plan
from orchestration.airflow import cosmos_group, manifest, tasks
from orchestration.airflow.notifier import EltRunNotifier

log = logging.getLogger(__name__)
ASSET_GROUP = "elt"


class PipelinesConfigError(RuntimeError):
    """``pipelines.yml`` (or the dbt manifest) cannot be turned into DAGs; the message says
    what to fix. Raised from the DAG file, it is the file's one import error."""


def pipeline_asset(pipeline: str) -> Asset:
    """The asset a pipeline updates each time it publishes."""
    return Asset(
        name=f"elt.published.{pipeline}",
        uri=f"elt://pipelines/{pipeline}/published",
        group=ASSET_GROUP,
    )


def mart_asset(mart: str, schema: str | None = None) -> Asset:
    """The asset of one published mart."""
    schema = schema or settings.published_schema()
    return Asset(
        name=f"elt.{schema}.{mart}", uri=f"elt://warehouse/{schema}/{mart}", group=ASSET_GROUP
    )


def _schedule(pipe: Pipeline) -> Any:
    if pipe.schedule:
        return pipe.schedule
    if pipe.depends_on:
        return [pipeline_asset(name) for name in pipe.depends_on]
    return None


def _default_args(pipe: Pipeline) -> dict[str, Any]:
    return {
        "owner": pipe.owner,
        "retries": pipe.retries.count,
        "retry_delay": pipe.retries.delay,
        "execution_timeout": pipe.limits.max_task_duration or pipe.execution_timeout,
        "pre_execute": tasks.prepare_task,
    }


def _python_task(step: Step, callable_, pipeline: str, **extra: Any) -> PythonOperator:
    """A step as a PythonOperator with the step's pool, slots, retries and timeout."""
    return PythonOperator(
        task_id=extra.pop("task_id", step.id),
        python_callable=callable_,
        op_kwargs={"pipeline": pipeline, "step_id": step.id},
        pool=step.pool or "default_pool",
        pool_slots=step.pool_slots,
        retries=step.retries,
        retry_delay=step.retry_delay,
        execution_timeout=step.timeout,
        **extra,
    )


def _doc(pipe: Pipeline, the_plan: Plan) -> str:
    steps = " → ".join(step.id for step in the_plan.steps)
    return (
        f"### {pipe.name}\n\n{pipe.description or ''}\n\nPlan: `{steps}`\n\n"
        "Every run is one elt run in `elt_meta` (id `<pipeline>-<start>-<hash of the run id>`)."
        " The dbt part is rendered by Cosmos from the manifest of `elt airflow parse-manifest`."
    )


def build_dag(config: ProjectConfig, pipe: Pipeline) -> DAG:
    """The DAG of one pipeline."""
    the_plan = plan(config, pipe)
    notifier = EltRunNotifier()
    with DAG(
        dag_id=pipe.name,
        description=pipe.description or None,
        doc_md=_doc(pipe, the_plan),
        schedule=_schedule(pipe),
        start_date=datetime.combine(pipe.start_date, datetime.min.time(), tzinfo=UTC),
        catchup=pipe.catchup,
        max_active_runs=pipe.max_active_runs,
        tags=sorted({*pipe.tags, "elt"}),
        default_args=_default_args(pipe),
        on_success_callback=notifier,
        on_failure_callback=notifier,
    ) as dag:
        _add_tasks(config, pipe, the_plan)
    return dag


class _StepTasks:
    """Builds the Airflow task (or task group) of each plan step, by kind."""

    def __init__(self, pipe: Pipeline, config: ProjectConfig | None = None):
        self.pipe, self.config = pipe, config
        self.marts: tuple[str, ...] = ()
        self.expected: tuple[str, ...] = ()
        self.ingest_group: TaskGroup | None = None

    def build(self, step: Step) -> Any:
        """The task of ``step``; a kind with no Airflow task is a loud error, never dropped."""
        builders = {
            "ingest": self._ingest,
            "transform": self._transform,
            "quality": self._quality,
            "publish": self._publish,
            "export": lambda s: _python_task(s, tasks.run_step, self.pipe.name),
            "notify": lambda s: _python_task(s, tasks.notify, self.pipe.name),
        }
        if step.kind not in builders:
            raise PipelinesConfigError(
                f"{self.pipe.name}: no Airflow task for a {step.kind!r} step"
            )
        return builders[step.kind](step)

    def _ingest(self, step: Step) -> Any:
        if self.ingest_group is None:
            self.ingest_group = TaskGroup("ingest", tooltip="one dlt load per source")
        with self.ingest_group:
            return _python_task(step, tasks.run_step, self.pipe.name, task_id=step.source)

    def _transform(self, step: Step) -> Any:
        dbt = cosmos_group.build_dbt_group(
            self.pipe,
            dbt_project.of(self.config, self.pipe),
            pool=step.pool,
            pool_slots=step.pool_slots,
            timeout=step.timeout,
        )
        self.marts, self.expected = dbt.marts, dbt.expected_nodes
        return dbt.group

    def _quality(self, step: Step) -> Any:
        gate = functools.partial(tasks.quality_gate, expected=self.expected)
        # it judges whatever ran before it, failures included
        return _python_task(step, gate, self.pipe.name, trigger_rule="all_done")

    def _publish(self, step: Step) -> Any:
        outlets = _publish_outlets(self.pipe.name, self.marts)
        return _python_task(step, tasks.run_step, self.pipe.name, outlets=outlets)


def _add_tasks(config: ProjectConfig, pipe: Pipeline, the_plan: Plan) -> None:
    """One task (or task group) per plan step, wired by the plan's own dependencies."""
    start = PythonOperator(
        task_id="start_run",
        python_callable=tasks.start_run,
        op_kwargs={"pipeline": pipe.name},
        retries=pipe.retries.count,
        retry_delay=pipe.retries.delay,
    )
    builder = _StepTasks(pipe, config)
    built: dict[str, Any] = {}
    for step in the_plan.steps:  # plan order: a step's upstream steps are built before it
        built[step.id] = builder.build(step)
        for upstream in step.depends_on:
            built[upstream] >> built[step.id]
        if not step.depends_on:
            start >> built[step.id]
        if step.trigger == "all_done":  # notify: a teardown reports whatever happened
            built[step.id].as_teardown(setups=start)


def _publish_outlets(pipeline: str, marts: tuple[str, ...]) -> list[Asset]:
    return [pipeline_asset(pipeline), *(mart_asset(mart) for mart in marts)]


def build_dags(config: ProjectConfig | None = None) -> dict[str, DAG]:
    """Every pipeline's DAG, keyed by DAG id (the pipeline name)."""
    config = config or elt_config.load()
    return {name: build_dag(config, pipe) for name, pipe in config.pipelines.items()}


def load_dags() -> dict[str, DAG]:
    """What the DAG file exposes; any problem becomes one :class:`PipelinesConfigError`."""
    try:
        config = elt_config.load()
        projects = manifest.projects_of(config)
        for project in projects:
            manifest.require_manifest(project)
    except (elt_config.ConfigError, manifest.ManifestError, DbtProjectError) as error:
        raise PipelinesConfigError(str(error)) from None
    for project in projects:
        stale = manifest.stale_files(project)
        if stale:
            log.warning(
                "the dbt manifest of %s does not match %s: run `elt airflow parse-manifest`",
                project.name,
                ", ".join(stale),
            )
    return build_dags(config)
