"""``pipelines.yml`` schedules in Prefect's terms, and the data interval of a scheduled run."""

from __future__ import annotations

from datetime import datetime, timedelta

from croniter import croniter

# Airflow-style presets as cron expressions (same meaning: start of the period, UTC).
PRESET_CRON = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
}


def cron_for(schedule: str | None) -> str | None:
    """The cron expression of a schedule; None for manual-only (none) and ``@once``.

    ``@once`` has no recurring equivalent in Prefect: such a deployment is run by hand
    (``prefect deployment run``) or once by ``elt prefect run``.
    """
    if schedule is None or schedule == "@once":
        return None
    return PRESET_CRON.get(schedule, schedule)


def data_interval(schedule: str | None, scheduled_at: datetime) -> tuple[datetime, datetime] | None:
    """The interval a scheduled run covers: the schedule period that ends at ``scheduled_at``.

    ``scheduled_at`` is snapped back to the latest fire time at or before it, and the interval
    runs from the fire time before that one: Airflow's data interval, so a pipeline loads the
    same window under either orchestrator. None when the schedule is not recurring.
    """
    cron = cron_for(schedule)
    if cron is None:
        return None
    # get_prev is strictly before its start: a second later finds a fire time equal to it
    end = croniter(cron, scheduled_at + timedelta(seconds=1)).get_prev(datetime)
    start = croniter(cron, end).get_prev(datetime)
    return start.replace(fold=0), end.replace(fold=0)


def intervals(
    schedule: str | None, first: datetime, last: datetime
) -> list[tuple[datetime, datetime]]:
    """The schedule's data intervals whose start lies in ``[first, last]``: one run each in a
    backfill (Airflow's ``--from-date``/``--to-date`` mean the same). Empty when not recurring."""
    cron = cron_for(schedule)
    if cron is None:
        return []
    ticks = croniter(cron, first - timedelta(seconds=1))
    found = []
    start = ticks.get_next(datetime)
    while start <= last:
        end = ticks.get_next(datetime)
        found.append((start.replace(fold=0), end.replace(fold=0)))
        start = end
    return found
