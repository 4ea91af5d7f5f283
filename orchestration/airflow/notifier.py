"""The DAG-level Airflow notifier: the same ``elt.notify`` message, never sent twice.

Attached as the DAGs' ``on_success_callback`` and ``on_failure_callback``. The notify task
normally reports the run; this notifier only speaks when that task never recorded itself
(the setup task failed, or notify crashed), so every run alerts exactly once.
"""

from __future__ import annotations

import logging

from airflow.sdk import BaseNotifier

from elt.redact import redact

log = logging.getLogger(__name__)


class EltRunNotifier(BaseNotifier):
    """Send the run's ``elt.notify.RunReport`` when the notify task did not."""

    template_fields = ()

    def render_template_fields(self, context, jinja_env=None) -> None:
        """Nothing to render; and ``dag.test()`` passes a serialized DAG without a template
        environment, on which Airflow's default rendering fails."""

    def notify(self, context) -> None:
        """Called by Airflow with the DAG run's context; never raises."""
        from orchestration.airflow.report import fallback_report

        try:
            sent = fallback_report(context)
        except Exception as exc:  # a callback must not fail the scheduler loop
            log.error("elt notifier could not report the run: %s", redact(str(exc)))
            return
        if sent:
            log.info("elt notifier sent the run report to %d URL(s)", sent)
