"""Failpoints: faults injected into plan steps by name, for tests of the run lifecycle.

Off unless ``ELT_FAILPOINTS`` is set (a JSON object, step id → fault), so production runs
pay one environment lookup per step. Because every orchestrator runs a step attempt through
:func:`elt.lifecycle.Run.attempt`, one setting gives `elt run`, Airflow and Prefect the
same faults, which is how the parity tests compare their retries, timeouts and limits::

    ELT_FAILPOINTS='{"ingest_landing": {"fail_attempts": 2}, "dbt_build": {"sleep_s": 30}}'

* ``fail_attempts: N`` — attempts 1..N raise :class:`InjectedFault`; attempt N+1 runs.
* ``sleep_s: S`` — the attempt is busy S seconds before running (a hang, or a slow step).
"""

from __future__ import annotations

import json
import os
import time

ENV = "ELT_FAILPOINTS"


class InjectedFault(RuntimeError):
    """A failure injected by ``ELT_FAILPOINTS``."""


def hit(step_id: str, attempt: int) -> None:
    """Apply the fault configured for ``step_id`` at this attempt (1-based), if any."""
    raw = os.environ.get(ENV)
    if not raw:
        return
    fault = json.loads(raw).get(step_id) or {}
    if attempt <= int(fault.get("fail_attempts", 0)):
        raise InjectedFault(f"injected failure of {step_id} (attempt {attempt})")
    if fault.get("sleep_s"):
        # short sleeps, so a timeout raised between Python operations (ours, Prefect's)
        # stops it, as it stops a step busy in Python code
        deadline = time.monotonic() + float(fault["sleep_s"])
        while time.monotonic() < deadline:
            time.sleep(0.05)
