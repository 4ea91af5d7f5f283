"""The data intervals a Prefect backfill runs: the schedule's periods whose start lies in the
asked range (Airflow's backfill reads --from/--to the same way)."""

from datetime import UTC, datetime

from orchestration.prefect.schedules import intervals


def _at(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=UTC)


def test_daily_intervals_from_first_to_last_start_inclusive():
    found = intervals("@daily", _at(3), _at(5))
    assert found == [(_at(3), _at(4)), (_at(4), _at(5)), (_at(5), _at(6))]


def test_a_range_inside_one_period_starts_at_the_next_tick():
    assert intervals("0 6 * * *", _at(3, 1), _at(3, 7)) == [(_at(3, 6), _at(4, 6))]
    assert intervals("@daily", _at(3, 1), _at(3, 7)) == []


def test_manual_and_once_pipelines_have_no_intervals():
    assert intervals(None, _at(1), _at(9)) == []
    assert intervals("@once", _at(1), _at(9)) == []
