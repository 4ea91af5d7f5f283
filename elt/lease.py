"""The per-pipeline run lease: one run of a pipeline at a time, across `elt run`, Airflow and
Prefect, and no run left ``running`` after its process died.

A lease is a row of ``elt_meta.leases`` (pipeline → run id, orchestrator, expiry) plus a
PostgreSQL session-level *shared* advisory lock on the pipeline's key, held by every process
that is working for the run right now (the `elt run` process, the Prefect flow process, the
Airflow task process of the moment). The row says who owns the pipeline; the advisory lock
says whether that owner is alive: PostgreSQL drops a session's locks the moment its client
dies (kill -9, OOM, lost pod), so a contender sees a dead holder at once.

* ``elt`` and ``prefect`` runs hold the advisory lock for the whole run: no lock = dead.
* ``airflow`` runs hold it only while one of their tasks runs; between tasks (scheduling
  gaps, pool queues) the row's expiry keeps the lease, renewed by every running task.

Either way a lease whose expiry passed is dead too (a holder cut off by the network keeps its
session for a while but stops renewing). A dead holder's run is marked ``failed`` with the
reason by whoever finds it (:func:`acquire`, ``elt status``): see :mod:`elt.lifecycle`.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import threading
from dataclasses import dataclass
from datetime import datetime

import psycopg2
import psycopg2.extensions

from elt import runs

log = logging.getLogger(__name__)

# seconds a lease stays valid without renewal: continuous holders renew every third of it
LEASE_TTL_S = float(os.environ.get("ELT_LEASE_TTL_S", "60"))
# how long an Airflow run keeps its lease between two tasks (queues, scheduling gaps)
TASK_GAP_TTL_S = float(os.environ.get("ELT_LEASE_TASK_GAP_S", "900"))
# orchestrators whose one process works for the whole run
CONTINUOUS = ("elt", "prefect")


class PipelineBusyError(RuntimeError):
    """Another live run holds the pipeline; the message names it."""


@dataclass(frozen=True)
class Holder:
    """The run that holds (or held) a pipeline's lease."""

    pipeline: str
    run_id: str
    orchestrator: str
    holder: str  # host:pid of the process that took or last renewed it
    acquired_at: datetime
    expires_at: datetime
    expired: bool
    attached: bool  # some process holds the pipeline's advisory lock now

    @property
    def alive(self) -> bool:
        """Still working: renewed in time, and attached when its orchestrator is continuous."""
        if self.expired:
            return False
        return self.attached or self.orchestrator not in CONTINUOUS

    def why_dead(self) -> str:
        """The reason recorded on the run when it is found dead."""
        if self.orchestrator in CONTINUOUS and not self.attached:
            return f"process died: the {self.orchestrator} process {self.holder} is gone"
        return (
            f"process died: no heartbeat since {self.expires_at:%Y-%m-%d %H:%M:%S %Z}"
            f" (last holder {self.holder})"
        )


def lock_key(pipeline: str) -> int:
    """The advisory-lock key of a pipeline (a signed 63-bit int)."""
    return int.from_bytes(hashlib.sha256(f"elt-run:{pipeline}".encode()).digest()[:8], "big") >> 1


def holder_name() -> str:
    """This process, as recorded on a lease: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _attached_elsewhere(cur: psycopg2.extensions.cursor, pipeline: str) -> bool:
    """Whether a session other than this one holds the pipeline's advisory lock."""
    key = lock_key(pipeline)
    cur.execute(
        "select exists (select 1 from pg_locks where locktype = 'advisory' and granted"
        " and classid = %s and objid = %s and objsubid = 1 and pid <> pg_backend_pid())",
        ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF),
    )
    row = cur.fetchone()
    return row is not None and bool(row[0])


def _holder(cur: psycopg2.extensions.cursor, pipeline: str, *, lock: bool) -> Holder | None:
    cur.execute(
        "select run_id, orchestrator, holder, acquired_at, expires_at, expires_at < now()"
        f" from {runs.SCHEMA}.leases where pipeline = %s" + (" for update" if lock else ""),
        (pipeline,),
    )
    row = cur.fetchone()
    if row is None:
        return None
    run_id, orchestrator, holder, acquired_at, expires_at, expired = row
    attached = _attached_elsewhere(cur, pipeline)
    return Holder(
        pipeline, run_id, orchestrator, holder, acquired_at, expires_at, expired, attached
    )


def current(url: str, pipeline: str) -> Holder | None:
    """Who holds ``pipeline`` now (alive or not), or None."""
    with runs.connect(url) as conn, conn.cursor() as cur:
        return _holder(cur, pipeline, lock=False)


def _ttl(orchestrator: str) -> float:
    return LEASE_TTL_S if orchestrator in CONTINUOUS else max(TASK_GAP_TTL_S, LEASE_TTL_S)


class Lease:
    """This process's hold on a pipeline for one run: an open session with the advisory lock
    and a thread renewing the row. :meth:`release` ends the run's hold (the run is over);
    :meth:`detach` only lets go of this process's part (an Airflow task ending)."""

    def __init__(self, url: str, pipeline: str, run_id: str, orchestrator: str):
        self.url, self.pipeline, self.run_id, self.orchestrator = (
            url,
            pipeline,
            run_id,
            orchestrator,
        )
        self.conn: psycopg2.extensions.connection | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def attach(self) -> Holder | None:
        """Take the lease for the run (or re-enter it); returns the dead holder it replaced,
        if any. Raises :class:`PipelineBusyError` when another live run holds it."""
        conn = psycopg2.connect(self.url, connect_timeout=10)
        try:
            with conn, conn.cursor() as cur:
                replaced = self._take(cur)
                # shared: several task processes of one Airflow run may work at once
                cur.execute("select pg_advisory_lock_shared(%s)", (lock_key(self.pipeline),))
        except BaseException:
            conn.close()
            raise
        conn.autocommit = True
        self.conn = conn
        self._thread = threading.Thread(target=self._renew_loop, name="elt-lease", daemon=True)
        self._thread.start()
        return replaced

    def _take(self, cur: psycopg2.extensions.cursor) -> Holder | None:
        cur.execute(
            f"insert into {runs.SCHEMA}.leases (pipeline, run_id, orchestrator, holder,"
            " expires_at) values (%s, '', '', '', now()) on conflict (pipeline) do nothing",
            (self.pipeline,),
        )
        held = _holder(cur, self.pipeline, lock=True)
        replaced = None
        if held is not None and held.run_id and held.run_id != self.run_id:
            if held.alive and _run_is_running(cur, held.run_id):
                raise PipelineBusyError(
                    f"pipeline {self.pipeline!r} is already running (run {held.run_id},"
                    f" started {held.acquired_at:%Y-%m-%d %H:%M:%S %Z}, by {held.orchestrator});"
                    " wait for it to finish"
                )
            replaced = held
        cur.execute(
            f"update {runs.SCHEMA}.leases set run_id = %s, orchestrator = %s, holder = %s,"
            " acquired_at = case when run_id = %s then acquired_at else now() end,"
            " renewed_at = now(), expires_at = now() + make_interval(secs => %s)"
            " where pipeline = %s",
            (
                self.run_id,
                self.orchestrator,
                holder_name(),
                self.run_id,
                _ttl(self.orchestrator),
                self.pipeline,
            ),
        )
        return replaced

    def _renew_loop(self) -> None:
        interval = LEASE_TTL_S / 3
        while not self._stop.wait(interval):
            try:
                self.renew()
            except psycopg2.Error as exc:  # the warehouse may be back by the next beat
                log.warning("could not renew the lease of %s: %s", self.pipeline, exc)

    def renew(self) -> None:
        """Push the expiry forward (only while this run still holds the lease)."""
        if self.conn is None:
            return
        with self.conn.cursor() as cur:
            cur.execute(
                f"update {runs.SCHEMA}.leases set renewed_at = now(), holder = %s,"
                " expires_at = now() + make_interval(secs => %s)"
                " where pipeline = %s and run_id = %s",
                (holder_name(), _ttl(self.orchestrator), self.pipeline, self.run_id),
            )

    def detach(self) -> None:
        """Stop renewing and close this process's session (its advisory lock goes with it)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.conn is not None:
            with contextlib.suppress(psycopg2.Error):
                self.renew()  # the gap allowance starts now, not at the last beat
            self.conn.close()
            self.conn = None

    def free(self) -> None:
        """Free the pipeline for the next run (only if this run still holds it)."""
        try:
            with runs.connect(self.url) as conn, conn.cursor() as cur:
                cur.execute(
                    f"update {runs.SCHEMA}.leases set run_id = '', expires_at = now()"
                    " where pipeline = %s and run_id = %s",
                    (self.pipeline, self.run_id),
                )
        except psycopg2.Error as exc:  # it expires by itself; the next run takes it
            log.warning("could not release the lease of %s: %s", self.pipeline, exc)

    def release(self) -> None:
        """The run is over: stop renewing, free the pipeline, close this process's session."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.free()
        self.detach()


def _run_is_running(cur: psycopg2.extensions.cursor, run_id: str) -> bool:
    cur.execute(f"select status from {runs.SCHEMA}.runs where run_id = %s", (run_id,))
    row = cur.fetchone()
    # no row yet: the holder took the lease and is about to open its run
    return row is None or row[0] == "running"
