"""The suites `make bench-quick`, `make bench-ingest` and `make bench` run."""

from __future__ import annotations

from bench.plan import Suite

ALL_CASES = (
    "ingest_db",
    "ingest_files",
    "ingest_api",
    "incremental_ingest",
    "incremental_dbt",
    "e2e",
)

SUITES: dict[str, Suite] = {
    # every case, small: 0.1 jafgen year (3.2k items) replicated to ~32k rows
    "quick": Suite(
        name="quick",
        command="make bench-quick",
        cases=ALL_CASES,
        base_years=0.1,
        ingest_factors=(10,),
        file_factor=10,
        tweet_factor=10,
        incremental_factor=10,
        dbt_years=0.1,
        e2e_years=0.1,
        e2e_scales=(1, 10),
    ),
    # issue 3's ingestion benchmark: 1 jafgen year (108k items) × 3 and × 10 (≥ 1M rows)
    "ingest": Suite(
        name="ingest",
        command="make bench-ingest",
        cases=("ingest_db",),
        base_years=1.0,
        ingest_factors=(3, 10),
    ),
    # everything at full scale, then the other helpers' scripts
    "full": Suite(
        name="full",
        command="make bench",
        cases=(*ALL_CASES, "gx_vs_sql", "prefect_vs_dbt", "airflow_parse"),
        base_years=1.0,
        ingest_factors=(3, 10),
        file_factor=3,
        tweet_factor=5,
        incremental_factor=10,
        dbt_years=1.0,
        e2e_years=0.1,
        e2e_scales=(1, 10, 100),
    ),
}
