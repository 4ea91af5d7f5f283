"""Duration limits of a run: the pipeline's ``limits:`` and its own recent history.

Orchestrator-agnostic: the Airflow notify task and the Prefect flow both check a finished
run here and send the same ``limit_exceeded`` alert. A run breaches a limit when it took
longer than ``max_duration``, when a step took longer than ``max_task_duration``, or when a
step took more than ``SLOW_FACTOR`` times its median over the last succeeded runs (and at
least ``SLOW_MARGIN_S`` more, so short steps do not alert on noise).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import median

from elt import notify, runs
from elt.config import Pipeline
from elt.notify import RunReport
from elt.runs import StepRecord
from elt.steps import RunResult

SLOW_FACTOR = 2.0
SLOW_MARGIN_S = 10.0
MIN_HISTORY = 3
HISTORY_RUNS = 10
EVENT = "limit_exceeded"


@dataclass
class LimitReport(RunReport):
    """A run report whose event is ``limit_exceeded``; the breaches are its warnings."""

    # (step id, seconds) of every step measured so far: where the run's time went
    step_durations: list[tuple[str, float]] = field(default_factory=list)

    @property
    def event(self) -> str:
        """Always ``limit_exceeded``."""
        return EVENT

    def title(self) -> str:
        """One line: pipeline and the breach count."""
        return f"[elt] {self.pipeline}: {len(self.warnings)} duration limit(s) exceeded"

    def body(self) -> str:
        """The run report, then each step's duration."""
        lines = [super().body()]
        if self.step_durations:
            lines.append("step durations:")
            lines += [f"  {step}: {seconds:.1f} s" for step, seconds in self.step_durations]
        return "\n".join(lines)


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


def step_durations_history(
    url: str, pipeline: str, run_id: str, last: int = HISTORY_RUNS
) -> dict[str, list[float]]:
    """Durations of each step in the pipeline's last ``last`` succeeded runs (not this one)."""
    with runs.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            f"select s.step_id, s.duration_s from {runs.SCHEMA}.steps s"
            f" join (select run_id from {runs.SCHEMA}.runs where pipeline = %s"
            "   and status = 'succeeded' and run_id <> %s order by started_at desc limit %s) r"
            " on r.run_id = s.run_id where s.status = 'succeeded' and s.duration_s is not null",
            (pipeline, run_id, last),
        )
        history: dict[str, list[float]] = {}
        for step_id, duration in cur.fetchall():
            history.setdefault(step_id, []).append(float(duration))
    return history


def check_and_alert(pipe: Pipeline, result: RunResult, url: str) -> list[str]:
    """Compare the run (its duration and recorded steps) with the limits and its history;
    send one ``limit_exceeded`` alert when something breached and the pipeline asks for it.
    Returns the breaches."""
    history = step_durations_history(url, pipe.name, result.run_id)
    breached = breaches(pipe, result.duration_s, result.steps, history)
    if breached and EVENT in pipe.notify.on:
        base = result.report()
        report = LimitReport(
            **{**base.__dict__, "warnings": breached},
            step_durations=[(s.step_id, s.duration_s) for s in result.steps],
        )
        notify.send(pipe.notify.urls, report)
    return breached
