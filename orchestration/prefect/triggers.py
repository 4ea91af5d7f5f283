"""``depends_on`` under Prefect: a pipeline runs when the pipelines it depends on published.

The Prefect equivalent of the Airflow assets the DAGs use: the flow emits the event
``elt.pipeline.published`` (resource ``elt.pipeline.<name>``) when its publish step succeeded,
and the deployment of a pipeline with ``depends_on`` carries a trigger on those events —
one event trigger for one upstream pipeline, a compound trigger requiring all of them (within
``WITHIN``) for several. The server's automations create the flow run; a worker runs it.
"""

from __future__ import annotations

from typing import Any

from elt.config import Pipeline

EVENT = "elt.pipeline.published"
# several upstream pipelines: each must have published within this window
WITHIN_S = 24 * 3600


def resource_id(pipeline: str) -> str:
    """The Prefect resource id of a pipeline's published marts."""
    return f"elt.pipeline.{pipeline}"


def _event_trigger(upstream: str) -> dict[str, Any]:
    return {
        "type": "event",
        "match": {"prefect.resource.id": resource_id(upstream)},
        "expect": [EVENT],
        "posture": "Reactive",
        "threshold": 1,
        "within": 0,
    }


def trigger_entries(pipe: Pipeline) -> list[dict[str, Any]]:
    """The deployment triggers of ``pipe`` (empty without ``depends_on``)."""
    if not pipe.depends_on:
        return []
    if len(pipe.depends_on) == 1:
        return [{**_event_trigger(pipe.depends_on[0]), "enabled": True}]
    return [
        {
            "type": "compound",
            "enabled": True,
            "require": "all",
            "within": WITHIN_S,
            "triggers": [_event_trigger(name) for name in pipe.depends_on],
        }
    ]


def emit_published(pipeline: str, run_id: str, tables: dict[str, int]) -> None:
    """Tell Prefect that ``pipeline`` published (downstream deployments' triggers fire)."""
    from prefect.events import emit_event

    emit_event(
        event=EVENT,
        resource={"prefect.resource.id": resource_id(pipeline), "elt.run-id": run_id},
        payload={"tables": tables},
    )
