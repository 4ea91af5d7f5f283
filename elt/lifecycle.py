"""The run lifecycle every orchestrator shares: open, attempt steps, settle, finish.

    open ─► lease (elt.lease): refuse a second live run; a dead holder's run is marked failed
      │     and alerted once; the run's row in elt_meta.runs
      ▼
    attempt(step, n) ─► failpoints ─► StepRunner (elt.steps) ─► measured, recorded, redacted
      │     (`elt run` wraps it in run_step: retries, retry delay, timeout;
      │      Airflow and Prefect map the step's policy onto their own retries and timeouts)
      ▼
    settle ─► notify step (report + limits alert) ─► finish: row closed, lease released

`elt run` (:mod:`elt.runner`) walks the plan through it in one process; an Airflow task opens
the same :class:`Run` for its one step (the lease re-entered by run id); a Prefect flow run
holds one :class:`Run` for all its task threads. :func:`reap` closes the runs whose process
died, from any command that looks (`elt run`, `elt status`, any orchestrator's next run).
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import json
import logging
import resource
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import psycopg2

from elt import failpoints, lease, limits, notify, paths, runs
from elt.config import Pipeline, ProjectConfig
from elt.lease import PipelineBusyError
from elt.redact import redact
from elt.spec import Plan, Step, plan
from elt.steps import RunResult, StepOutput, StepRunner

log = logging.getLogger(__name__)

# after a step's timeout, how long to wait for it to stop before giving up on it
STOP_GRACE_S = 10.0

__all__ = ["PipelineBusyError", "Run", "StepFailed", "StepTimedOut", "reap"]


class StepFailed(RuntimeError):
    """A step attempt failed; the message names the step and the reason (redacted)."""


class StepTimedOut(StepFailed, TimeoutError):
    """A step ran past its timeout."""


class _Stop(BaseException):
    """Raised inside a step's thread to stop it at its timeout (a BaseException, so that
    library code catching Exception does not swallow it)."""


# what a step stopped at its timeout raises; an orchestrator adds its own (Airflow's
# AirflowTaskTimeout is a BaseException of its own)
TIMEOUT_ERRORS: list[type[BaseException]] = [TimeoutError, _Stop]


def measure_step(
    fn: Callable[[], StepOutput], step: Step
) -> tuple[runs.StepRecord, BaseException | None]:
    """Run one step, timing it and sampling CPU and peak memory; never raises."""
    process = psutil.Process()
    cpu_before = sum(process.cpu_times()[:2])
    started = datetime.now(UTC)
    status, rows, error = "succeeded", None, None
    detail: runs.Detail = {}
    try:
        rows, detail = fn()
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # recorded, then reported by the caller
        # BaseException: Rust extensions (connectorx) raise a PanicException that is not an
        # Exception; it must fail the step like any error, not leave the run "running"
        status, detail, error = "failed", {"error": redact(str(exc))[:2000]}, exc
    record = runs.StepRecord(
        step_id=step.id,
        kind=step.kind,
        status=status,
        started_at=started,
        finished_at=datetime.now(UTC),
        rows=rows,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        cpu_s=sum(process.cpu_times()[:2]) - cpu_before,
        detail=detail,
    )
    return record, error


def call_with_timeout(fn: Callable[[], StepOutput], seconds: float | None) -> StepOutput:
    """``fn()``, stopped after ``seconds``: it runs in a thread that is interrupted at the
    timeout (between Python operations, as Prefect's and Airflow's own timeouts are)."""
    if seconds is None:
        return fn()
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="elt-step", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(thread.ident or 0), ctypes.py_object(_Stop)
        )
        thread.join(STOP_GRACE_S)
        still = "; it did not stop and is left behind" if thread.is_alive() else ""
        raise StepTimedOut(f"timed out after {seconds:.0f} s{still}")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def _timed_out(error: BaseException | None, step: Step, record: runs.StepRecord) -> bool:
    """Whether ``error`` is the step being stopped at its timeout. Prefect stops a task in a
    worker thread by cancelling it (CancelledError), which also means a cancelled run: a
    cancellation at the step's timeout is its timeout."""
    if error is None:
        return False
    if isinstance(error, tuple(TIMEOUT_ERRORS)):
        return True
    if isinstance(error, asyncio.CancelledError) and step.timeout is not None:
        return record.duration_s >= step.timeout.total_seconds() * 0.95
    return False


def settle(result: RunResult, failures: Iterable[str] = ()) -> None:
    """The run's status and error from its recorded steps and any ``failures`` an
    orchestrator saw itself (a task that could not run); its duration so far."""
    failed_steps = [s for s in result.steps if s.status == "failed" and s.kind != "notify"]
    failures = list(failures)
    if result.status == "failed" or failed_steps or failures:
        result.status = "failed"
        if not result.error:
            if failed_steps:
                first = failed_steps[0]
                result.error = f"{first.step_id}: {first.detail.get('error', 'failed')}"
            else:
                result.error = failures[0]
    else:
        result.status = "succeeded"
    result.duration_s = time.monotonic() - result.started


@dataclass
class Run:
    """One run of one pipeline, as seen from the process working for it now."""

    config: ProjectConfig
    pipe: Pipeline
    runner: StepRunner
    orchestrator: str

    @classmethod
    def create(
        cls,
        config: ProjectConfig,
        pipe: Pipeline,
        run_id: str,
        url: str,
        *,
        orchestrator: str,
        runner_class: type[StepRunner] = StepRunner,
        **runner_options: Any,
    ) -> Run:
        """A run (not opened yet); ``runner_options`` go to the step runner."""
        result = RunResult(run_id=run_id, pipeline=pipe.name)
        runner = runner_class(config, pipe, result, url, **runner_options)
        return cls(config=config, pipe=pipe, runner=runner, orchestrator=orchestrator)

    def __post_init__(self) -> None:
        self.plan: Plan = plan(self.config, self.pipe)
        self.lease = lease.Lease(self.url, self.pipe.name, self.run_id, self.orchestrator)
        # failures an orchestrator saw that no step record shows (a task that never ran)
        self.failures: list[str] = []
        self._record_lock = threading.Lock()

    @property
    def url(self) -> str:
        """The warehouse URL (with credentials: never log it)."""
        return self.runner.url

    @property
    def run_id(self) -> str:
        """The elt run id."""
        return self.runner.result.run_id

    @property
    def result(self) -> RunResult:
        """What the run did so far."""
        return self.runner.result

    # -- open --------------------------------------------------------------------------

    def open(self, *, reopen: bool = True) -> None:
        """Take the pipeline's lease and open (or re-enter) the run's row.

        Raises :class:`PipelineBusyError` while another live run holds the pipeline. A run
        whose holder died is closed as failed, with an alert, before this one starts.
        ``reopen``: a step of a finished run (an Airflow task cleared and run again) sets it
        back to ``running``.
        """
        runs.migrate(self.url)
        reap(self.url, self.config, pipeline=self.pipe.name)
        replaced = self.lease.attach()
        if replaced is not None:
            close_dead_run(self.url, self.config, replaced.run_id, replaced.why_dead())
        runs.open_run(self.url, self.run_id, self.pipe.name, self.orchestrator, reopen=reopen)

    # -- steps -------------------------------------------------------------------------

    def attempt(self, step: Step, attempt: int = 1) -> runs.StepRecord:
        """Run one attempt of ``step``: failpoints, the step, its record in ``elt_meta``.
        Raises :class:`StepFailed` (redacted) when it failed; the record is kept either way."""
        if step.kind == "notify":  # the message reports the run's outcome: settle it first
            settle(self.result, self.failures)

        def body() -> StepOutput:
            failpoints.hit(step.id, attempt)
            return self.runner.run(step)

        record, error = measure_step(body, step)
        record.detail["attempt"] = attempt
        timed_out = _timed_out(error, step, record)
        if timed_out:
            seconds = step.timeout.total_seconds() if step.timeout else 0
            record.detail.update(timed_out=True, error=f"timed out after {seconds:.0f} s")
        if step.kind == "notify":
            record.detail["limits_exceeded"] = self.check_limits()
        self.record(record)
        if error is None:
            return record
        if isinstance(error, asyncio.CancelledError):
            raise error  # the orchestrator's own cancellation: it turns it into its state
        if timed_out:
            raise StepTimedOut(f"{step.id}: {record.detail['error']}")
        raise StepFailed(f"{step.id}: {redact(f'{type(error).__name__}: {error}')}")

    def run_step(self, step: Step, sleep: Callable[[float], None] = time.sleep) -> bool:
        """`elt run`'s way: attempt ``step`` with its retries, retry delay and timeout;
        returns whether it finally succeeded."""
        for attempt in range(1, step.retries + 2):
            timeout = step.timeout.total_seconds() if step.timeout else None
            try:
                call_with_timeout(functools.partial(self._attempt_rows, step, attempt), timeout)
                return True
            except StepTimedOut as exc:
                if not any(
                    s.step_id == step.id and s.detail.get("timed_out") for s in self.result.steps
                ):
                    self._timed_out(step, attempt, str(exc))
                return False  # a hang is not retried: the next attempt would hang too
            except StepFailed:
                if attempt > step.retries:
                    return False
                log.warning("%s failed (attempt %d), retrying", step.id, attempt)
                sleep(step.retry_delay.total_seconds())
        return False

    def _attempt_rows(self, step: Step, attempt: int) -> StepOutput:
        record = self.attempt(step, attempt)
        return record.rows, record.detail

    def _timed_out(self, step: Step, attempt: int, reason: str) -> None:
        """Record a step stopped by ``call_with_timeout`` (its own record never came)."""
        now = datetime.now(UTC)
        timeout = step.timeout.total_seconds() if step.timeout else 0.0
        record = runs.StepRecord(
            step_id=step.id,
            kind=step.kind,
            status="failed",
            started_at=datetime.fromtimestamp(now.timestamp() - timeout, UTC),
            finished_at=now,
            detail={"error": reason.split(": ", 1)[-1], "attempt": attempt, "timed_out": True},
        )
        self.record(record)

    def record(self, record: runs.StepRecord) -> None:
        """Keep a step's record in memory and in ``elt_meta`` (a retry replaces the earlier
        attempt). A warehouse that is gone does not stop the run: the outcome still reaches
        the notify step and the alert."""
        with self._record_lock:
            self.result.steps = [s for s in self.result.steps if s.step_id != record.step_id]
            self.result.steps.append(record)
        try:
            runs.record_step(self.url, self.run_id, record)
        except psycopg2.Error as exc:
            log.warning("could not record step %s: %s", record.step_id, redact(str(exc)))

    def check_limits(self) -> list[str]:
        """The run's duration limit breaches (one ``limit_exceeded`` alert when any)."""
        try:
            return limits.check_and_alert(self.pipe, self.result, self.url)
        except Exception as exc:  # a failed check must not turn a good run into a failed one
            log.warning("could not check the duration limits: %s", redact(str(exc)))
            return []

    # -- finish ------------------------------------------------------------------------

    def interrupted(self, exc: BaseException) -> None:
        """The process is being stopped (signal, crash): fail the run and send its report
        from memory, since the notify step will not run."""
        self.result.status = "failed"
        self.result.error = self.result.error or redact(
            f"interrupted: {type(exc).__name__}: {exc}".rstrip(": ")
        )
        if any(s.kind == "notify" for s in self.result.steps):
            return
        notify_step = next(s for s in self.plan.steps if s.kind == "notify")
        try:
            self.attempt(notify_step)
        except StepFailed as error:
            log.warning("could not notify: %s", error)

    def finish(self) -> None:
        """Close the run's row and release the pipeline. When the warehouse is gone the
        outcome is kept in ``.elt/unsettled/`` and written by the next command that looks."""
        settle(self.result, self.failures)
        error = redact(self.result.error) if self.result.error else None
        try:
            runs.finish_run(self.url, self.run_id, self.result.status, error)
        except psycopg2.Error as exc:
            log.warning("could not close run %s: %s", self.run_id, redact(str(exc)))
            _keep_unsettled(self.run_id, self.result.status, error)
        self.lease.release()

    def detach(self) -> None:
        """This process is done with the run, which goes on elsewhere (an Airflow task)."""
        self.lease.detach()


# -- runs whose process died -------------------------------------------------------------


def _unsettled_dir() -> Path:
    return paths.state_dir() / "unsettled"


def _keep_unsettled(run_id: str, status: str, error: str | None) -> None:
    folder = _unsettled_dir()
    folder.mkdir(parents=True, exist_ok=True)
    record = {"run_id": run_id, "status": status, "error": error}
    (folder / f"{run_id}.json").write_text(json.dumps(record))


def _write_unsettled(url: str) -> None:
    """Close the runs this machine could not close because the warehouse was gone (their
    alert was sent from memory then: none is sent again)."""
    folder = _unsettled_dir()
    if not folder.is_dir():
        return
    for path in sorted(folder.glob("*.json")):
        record = json.loads(path.read_text())
        runs.finish_run(url, record["run_id"], record["status"], record["error"], only_running=True)
        path.unlink()


@dataclass(frozen=True)
class ClosedRun:
    """A run found dead and closed as failed."""

    pipeline: str
    run_id: str
    orchestrator: str
    reason: str
    alerted: int


def close_dead_run(url: str, config: ProjectConfig, run_id: str, reason: str) -> ClosedRun | None:
    """Mark ``run_id`` failed with ``reason`` if it is still ``running``, and alert once
    (only the caller that flips it alerts). Returns what was closed, or None."""
    closed = runs.fail_running_run(url, run_id, reason)
    if closed is None:
        return None
    pipeline, orchestrator, duration_s = closed
    alerted = 0
    pipe = config.pipelines.get(pipeline)
    if pipe is not None:
        report = notify.RunReport(
            pipeline=pipeline,
            run_id=run_id,
            status="failed",
            duration_s=duration_s,
            error=reason,
        )
        if report.event in pipe.notify.on:
            alerted = notify.send(pipe.notify.urls, report)
    log.warning("run %s of %s closed as failed: %s", run_id, pipeline, reason)
    return ClosedRun(pipeline, run_id, orchestrator, reason, alerted)


def reap(url: str, config: ProjectConfig, pipeline: str | None = None) -> list[ClosedRun]:
    """Close every ``running`` run (of ``pipeline``, or all) whose process is gone: its
    lease expired or was never renewed by a live process, or another run took over."""
    _write_unsettled(url)
    closed = []
    for run_id, name in runs.running_runs(url, pipeline):
        holder = lease.current(url, name)
        if holder is not None and holder.run_id == run_id:
            if holder.alive:
                continue
            reason = holder.why_dead()
        elif holder is not None and holder.run_id:
            reason = f"process died: its pipeline was taken over by run {holder.run_id}"
        else:
            reason = "process died: it no longer holds its pipeline's lease"
        done = close_dead_run(url, config, run_id, reason)
        if done is not None:
            closed.append(done)
    return closed


@dataclass(frozen=True)
class RunningRun:
    """A run in progress, with its lease."""

    pipeline: str
    run_id: str
    orchestrator: str
    started_at: datetime
    expires_at: datetime | None


def running(url: str) -> list[RunningRun]:
    """The runs in status ``running`` and when their lease expires (None: no lease)."""
    with runs.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            f"select r.pipeline, r.run_id, r.orchestrator, r.started_at, l.expires_at"
            f" from {runs.SCHEMA}.runs r left join {runs.SCHEMA}.leases l"
            " on l.pipeline = r.pipeline and l.run_id = r.run_id"
            " where r.status = 'running' order by r.started_at"
        )
        return [RunningRun(*row) for row in cur.fetchall()]
