"""Open a run of a pipeline through the lifecycle, say so, and wait to be killed.

    python -m tests.helpers.hold_run PIPELINE ORCHESTRATOR

Prints ``held <run id>`` once the lease is taken; the lease is then renewed until the
process is killed (tests kill it with SIGKILL, by PID). It gives up after 10 minutes.
"""

from __future__ import annotations

import sys
import time

from elt import config, runs, settings
from elt.lifecycle import Run


def main(pipeline: str, orchestrator: str) -> None:
    """Hold ``pipeline`` as a run of ``orchestrator`` until killed."""
    project = config.load()
    run = Run.create(
        project,
        project.pipeline(pipeline),
        runs.new_run_id(pipeline),
        settings.warehouse_url(),
        orchestrator=orchestrator,
    )
    run.open()
    print(f"held {run.run_id}", flush=True)
    time.sleep(600)


if __name__ == "__main__":
    main(*sys.argv[1:3])
