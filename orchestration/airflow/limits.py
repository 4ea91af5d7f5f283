"""Duration limits: the pipeline's ``limits:`` and its own recent history.

A run breaches a limit when it took longer than ``max_duration``, when a step took longer
than ``max_task_duration``, or when a step took more than ``SLOW_FACTOR`` times its median
over the last succeeded runs (and at least ``SLOW_MARGIN_S`` more, so short steps do not
alert on noise). Breaches go out as a ``limit_exceeded`` notification.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median

from elt.config import Pipeline
from elt.notify import RunReport
from elt.runs import StepRecord

SLOW_FACTOR = 2.0
SLOW_MARGIN_S = 10.0
MIN_HISTORY = 3


@dataclass
class LimitReport(RunReport):
    """A run report whose event is ``limit_exceeded``; the breaches are its warnings."""

    @property
    def event(self) -> str:
        """Always ``limit_exceeded``."""
        return "limit_exceeded"

    def title(self) -> str:
        """One line: pipeline and the breach count."""
        return f"[elt] {self.pipeline}: {len(self.warnings)} duration limit(s) exceeded"


def breaches(
    pipe: Pipeline,
    run_duration_s: float,
    steps: list[StepRecord],
    history: dict[str, list[float]] | None = None,
) -> list[str]:
    """Every limit the run breached, as readable lines (empty when none)."""
    found: list[str] = []
    limit = pipe.limits.max_duration
    if limit is not None and run_duration_s > limit.total_seconds():
        found.append(
            f"run took {run_duration_s:.0f} s, over max_duration {limit.total_seconds():.0f} s"
        )
    task_limit = pipe.limits.max_task_duration
    for step in steps:
        took = step.duration_s
        if task_limit is not None and took > task_limit.total_seconds():
            found.append(
                f"{step.step_id} took {took:.0f} s, over max_task_duration"
                f" {task_limit.total_seconds():.0f} s"
            )
            continue
        past = (history or {}).get(step.step_id, [])
        if len(past) >= MIN_HISTORY:
            usual = median(past)
            if took > SLOW_FACTOR * usual and took - usual > SLOW_MARGIN_S:
                found.append(
                    f"{step.step_id} took {took:.0f} s, {took / usual:.1f}x its median of"
                    f" {usual:.0f} s over the last {len(past)} runs"
                )
    return found
