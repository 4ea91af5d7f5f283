"""The suites `make bench-quick`, `make bench-ingest` and `make bench` run."""

from __future__ import annotations

from bench.plan import Suite

ALL_CASES = (
    "ingest_db",
    "ingest_files",
    "ingest_api",
    "ingest_shop",
    "incremental_ingest",
    "incremental_dbt",
    "e2e",
)

SUITES: dict[str, Suite] = {
    # a smoke run of every case family at a small scale, in < 5 minutes: 0.1 jafgen year
    # (3.2k items) replicated to ~32k rows, 2 rounds; one `elt run` of the 0.1-year demo,
    # which includes a dbt build (the dbt incremental-vs-full case, seven builds of 140
    # nodes, and the 10×/100× curve are left to `full`)
    "quick": Suite(
        name="quick",
        command="make bench-quick",
        cases=tuple(case for case in ALL_CASES if case != "incremental_dbt"),
        repeats=2,
        base_years=0.1,
        ingest_factors=(10,),
        file_factors=(10,),
        tweet_factor=10,
        incremental_factor=10,
        e2e_years=0.1,
        e2e_scales=(1,),
        e2e_repeats=1,
    ),
    # issue 3's ingestion benchmark: 1 jafgen year (108k items) × 3 and × 10 (≥ 1M rows)
    "ingest": Suite(
        name="ingest",
        command="make bench-ingest",
        cases=("ingest_db",),
        base_years=1.0,
        ingest_factors=(3, 10),
    ),
    # every case at full scale (3 rounds), then the other bench scripts; ≈ 100 minutes on a
    # shared 2-core machine (2026-12-04): database ingestion at 1.08M rows only (`make
    # bench-ingest` adds 325k), files of 1 jafgen year (108k rows) and ten (1.08M rows), 5
    # years of tweets (109k)
    "full": Suite(
        name="full",
        command="make bench",
        cases=(
            *ALL_CASES,
            "publish",
            "gx_vs_sql",
            "prefect_vs_dbt",
            "prefect_vs_dbt_generated",
            "airflow_parse",
            "airflow_e2e",
            "scheduled",
        ),
        base_years=1.0,
        ingest_factors=(10,),
        file_factors=(1, 10),
        tweet_factor=5,
        incremental_factor=10,
        dbt_years=1.0,
        e2e_years=0.1,
        e2e_scales=(1, 10, 100),
        publish_scales=(100, 1000),
    ),
    # publish at 100× and 1000× the 0.1-year demo (issue 21): one `elt run` per scale, then
    # ours and the copy it replaced, 3 rounds; its own block in BENCHMARKS.md
    "publish": Suite(
        name="publish",
        command="python -m bench publish",
        cases=("publish",),
        e2e_years=0.1,
        publish_scales=(100, 1000),
    ),
}
