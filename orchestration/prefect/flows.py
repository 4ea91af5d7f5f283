"""Deployment entrypoint: every pipeline of pipelines.yml as a Prefect flow attribute.

``prefect.yaml`` points each deployment at ``orchestration/prefect/flows.py:<pipeline>``;
a worker imports this file and takes the attribute named after the pipeline. Run one
pipeline by hand with ``python orchestration/prefect/flows.py <pipeline>`` (or
``elt prefect run <pipeline>``).
"""

from __future__ import annotations

import sys

from orchestration.prefect.environment import prepare

prepare()  # before Prefect is imported below

from elt import settings  # noqa: E402
from elt.config import load  # noqa: E402
from orchestration.prefect.factory import build_flows  # noqa: E402

settings.load_local_env()
FLOWS = build_flows(load())

_clashes = sorted(name for name in FLOWS if name in globals())
if _clashes:
    raise ValueError(
        f"pipeline name(s) {', '.join(_clashes)} clash with names in {__file__};"
        " rename the pipeline(s) in pipelines.yml"
    )
globals().update(FLOWS)


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in FLOWS:
        sys.exit(f"usage: python {sys.argv[0]} <pipeline>; pipelines: {', '.join(FLOWS)}")
    FLOWS[sys.argv[1]]()
