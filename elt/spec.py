"""A pipeline's run plan: ordered, orchestrator-agnostic steps.

`elt run` walks this plan in-process; the Airflow and Prefect factories turn the same plan
into tasks. A step names what it does (``kind``), what it waits for (``depends_on``), the
pool it draws from and its retry policy; it never imports an orchestrator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from elt.config import Pipeline, ProjectConfig

StepKind = Literal["ingest", "transform", "quality", "publish", "export", "notify"]


@dataclass(frozen=True)
class Step:
    """One unit of work in a run."""

    id: str
    kind: StepKind
    depends_on: tuple[str, ...] = ()
    source: str | None = None
    pool: str | None = None
    pool_slots: int = 1
    retries: int = 0
    retry_delay: timedelta = timedelta(minutes=5)
    timeout: timedelta | None = None
    # notify runs whatever happened before it; every other step needs its upstream to succeed
    trigger: Literal["all_success", "all_done"] = "all_success"


@dataclass(frozen=True)
class Plan:
    """The ordered steps of one pipeline."""

    pipeline: str
    steps: tuple[Step, ...] = field(default_factory=tuple)

    def step(self, step_id: str) -> Step:
        """The step called ``step_id``."""
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(f"plan {self.pipeline!r} has no step {step_id!r}")

    def of_kind(self, kind: StepKind) -> list[Step]:
        """The steps of one kind, in plan order."""
        return [step for step in self.steps if step.kind == kind]


def _pool(config: ProjectConfig, wanted: str | None) -> str | None:
    return wanted if wanted in config.pools else None


def plan(config: ProjectConfig, pipeline: Pipeline | str) -> Plan:
    """Build the plan of ``pipeline``: ingest each source → dbt build → gate → publish → …"""
    pipe = config.pipeline(pipeline) if isinstance(pipeline, str) else pipeline
    timeout = pipe.limits.max_task_duration or pipe.execution_timeout
    steps: list[Step] = []
    for name in pipe.sources:
        source = config.sources[name]
        retries = source.retries or pipe.retries
        steps.append(
            Step(
                id=f"ingest_{name}",
                kind="ingest",
                source=name,
                pool=_pool(config, source.pool_name),
                pool_slots=source.pool_slots,
                retries=retries.count,
                retry_delay=retries.delay,
                timeout=timeout,
            )
        )
    previous = tuple(step.id for step in steps)

    def add(step_id: str, kind: StepKind, **extra: Any) -> None:
        nonlocal previous
        # a failed check is a fact about the data, not a transient error: never retried
        retries = 0 if kind == "quality" else pipe.retries.count
        steps.append(
            Step(
                id=step_id,
                kind=kind,
                depends_on=previous,
                retries=retries,
                retry_delay=pipe.retries.delay,
                timeout=timeout,
                **extra,
            )
        )
        previous = (step_id,)

    own = {"pool_slots": pipe.pool_slots}
    add("dbt_build", "transform", pool=_pool(config, pipe.pool or "database"), **own)
    add("quality_gate", "quality", pool=_pool(config, pipe.pool or "database"), **own)
    if pipe.publish == "write_audit_publish":
        add("publish", "publish", pool=_pool(config, pipe.pool or "database"), **own)
    if pipe.export is not None:
        add("export", "export", pool=_pool(config, pipe.pool or "file_io"), **own)
    add("notify", "notify", trigger="all_done")
    return Plan(pipeline=pipe.name, steps=tuple(steps))
