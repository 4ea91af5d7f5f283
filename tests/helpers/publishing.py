"""A publish running in a thread of the test, for tests that interrupt it."""

from __future__ import annotations

import threading

from elt.publish import publish


def start_publish(url: str) -> tuple[threading.Thread, list[BaseException]]:
    """Start publishing schema ``audit`` of ``url`` to ``analytics`` in a thread; returns the
    thread and the list that receives what the publish raised."""
    failure: list[BaseException] = []

    def run_publish() -> None:
        try:
            publish(url, audit="audit", published="analytics")
        except BaseException as exc:  # reported to the test thread
            failure.append(exc)

    worker = threading.Thread(target=run_publish)
    worker.start()
    return worker, failure
