"""The benchmark harness's statistics, ratios, target verdicts and Markdown blocks."""

from __future__ import annotations

import json

import pytest

from bench.report import case_section, e2e_lines, scale_lines, update_benchmarks
from bench.results import finish_case, save, verdict
from bench.stats import (
    fmt_ratio,
    fmt_spread,
    markdown_table,
    ratio,
    replace_block,
    summarize,
)


def test_summary_of_samples_is_median_min_max():
    summary = summarize([3.0, 1.0, 10.0, 2.0])
    assert (summary.median, summary.min, summary.max, summary.n) == (2.5, 1.0, 10.0, 4)
    assert summarize([7.0]).as_dict() == {"median": 7.0, "min": 7.0, "max": 7.0, "n": 1}


def test_summary_of_nothing_is_an_error():
    with pytest.raises(ValueError, match="no samples"):
        summarize([])


def test_ratio_and_its_formatting():
    assert ratio(1.0, 4.0) == 0.25
    assert ratio(1.0, 0.0) is None
    assert fmt_ratio(0.25) == "0.25×"
    assert fmt_ratio(None) == "–"
    assert fmt_spread(summarize([1500.0, 1200.0, 2000.0])) == "1,500 (1,200–2,000)"
    assert fmt_spread(summarize([1.234, 1.0, 2.0])) == "1.23 (1.00–2.00)"


def test_markdown_table_escapes_pipes():
    table = markdown_table(["variant", "s"], [["psql | psql", "1.0"]])
    assert table.splitlines() == ["| variant | s |", "|---|---|", "| psql \\| psql | 1.0 |"]


def test_replace_block_keeps_text_outside_the_markers():
    document = (
        "# Benchmarks\nprose before\n"
        "<!-- bench:quick:begin -->\nold table\n<!-- bench:quick:end -->\n"
        "prose after\n<!-- bench:ingest:begin -->\ningest table\n<!-- bench:ingest:end -->\n"
    )
    updated = replace_block(document, "quick", "new table")
    assert "old table" not in updated
    assert "<!-- bench:quick:begin -->\nnew table\n<!-- bench:quick:end -->" in updated
    assert updated.startswith("# Benchmarks\nprose before\n")
    assert "prose after\n" in updated and "ingest table" in updated
    assert replace_block(updated, "quick", "new table") == updated  # idempotent


def test_replace_block_appends_a_missing_block():
    updated = replace_block("# Benchmarks\n", "full", "tables")
    assert updated == "# Benchmarks\n\n<!-- bench:full:begin -->\ntables\n<!-- bench:full:end -->\n"


def test_replacement_text_with_backslashes_is_kept_verbatim():
    updated = replace_block("<!-- bench:q:begin -->\n<!-- bench:q:end -->", "q", r"psql \copy \1")
    assert r"psql \copy \1" in updated


def _record() -> dict:
    def sample(rows_per_s: float, work: float, rss: float) -> dict:
        return {"rows_per_s": rows_per_s, "work_s": work, "wall_s": work + 1, "peak_rss_mib": rss}

    return {
        "id": "ingest_db_1000",
        "title": "Database → warehouse",
        "metric": "throughput",
        "baseline": "copy",
        "labels": {"ours": "ours", "copy": "COPY"},
        "targets": [
            {
                "text": "≥ 0.5× COPY",
                "variant": "ours",
                "against": "copy",
                "on": "rows_per_s",
                "op": ">=",
                "bound": 0.5,
            },
            {
                "text": "time ≤ 1.5× COPY",
                "variant": "ours",
                "against": "copy",
                "on": "work_s",
                "op": "<=",
                "bound": 1.5,
            },
        ],
        "samples": {
            "ours": [sample(400.0, 2.5, 100), sample(600.0, 1.7, 120), sample(500.0, 2.0, 110)],
            "copy": [sample(1000.0, 1.0, 40), sample(900.0, 1.1, 40), sample(1100.0, 0.9, 40)],
        },
    }


def test_finish_case_computes_medians_ratios_and_verdicts():
    record = finish_case(_record())
    assert record["summary"]["ours"]["rows_per_s"] == {
        "median": 500.0,
        "min": 400.0,
        "max": 600.0,
        "n": 3,
    }
    assert record["ratios"]["ours"]["rows_per_s"] == pytest.approx(0.5)
    assert record["ratios"]["copy"]["rows_per_s"] == 1.0
    throughput, duration = record["verdicts"]
    assert throughput["met"] is True and throughput["ratio"] == pytest.approx(0.5)
    assert duration["met"] is False and duration["ratio"] == pytest.approx(2.0)


def test_case_section_shows_the_table_and_missed_targets():
    text = case_section(finish_case(_record()))
    assert "| ours | 500 (400–600) | 0.50× |" in text
    assert "| COPY | 1,000 (900–1,100) | 1.00× (baseline) |" in text
    assert "Target ≥ 0.5× COPY: measured 0.50× — met." in text
    assert "Target time ≤ 1.5× COPY: measured 2.00× — **MISSED**" in text


def test_a_failed_case_shows_its_error():
    record = finish_case({**_record(), "samples": {"ours": [], "copy": []}, "error": "boom"})
    text = case_section(record)
    assert "**failed**" in text and "boom" in text
    assert "not measured" in text


def _suite_result(suite: str) -> dict:
    return {
        "suite": suite,
        "command": f"make bench-{suite}",
        "repeats": 3,
        "started_at": "2026-11-30T12:00:00+00:00",
        "duration_s": 120.0,
        "load_average_end": [1.0, 1.0, 1.0],
        "machine": {
            "cpu_model": "Test CPU",
            "cores_logical": 2,
            "memory_gib": 24.0,
            "os": "Linux",
            "python": "3.11.7",
            "postgresql": "16",
            "packages": {"dlt": "1.31.0"},
            "load_average": [0.5, 0.4, 0.3],
        },
        "cases": [finish_case(_record())],
    }


def test_update_benchmarks_writes_each_suite_into_its_own_block(tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    path.write_text("# Benchmarks\n\nHand-written findings.\n")
    update_benchmarks(_suite_result("quick"), path)
    update_benchmarks(_suite_result("ingest"), path)
    update_benchmarks(_suite_result("quick"), path)
    text = path.read_text()
    assert text.startswith("# Benchmarks\n\nHand-written findings.\n")
    assert text.count("<!-- bench:quick:begin -->") == 1
    assert text.count("<!-- bench:ingest:begin -->") == 1
    assert "`make bench-ingest`" in text
    assert "Test CPU, 2 cores, 24.0 GiB RAM" in text
    assert "load average at start 0.5 / 0.4 / 0.3" in text


def test_a_partial_run_says_so():
    from bench.report import render_suite

    assert "Partial run" not in render_suite(_suite_result("full"))
    partial = render_suite({**_suite_result("full"), "finished": False})
    assert "**Partial run**" in partial and "| ours | 500 (400–600) | 0.50× |" in partial


def test_a_rerun_of_one_case_replaces_it_in_the_suite_run():
    from bench.report import render_suite
    from bench.results import merge_rerun

    failed = {"id": "ingest_api", "group": "ingest_api", "error": "NameError: boom"}
    previous = {**_suite_result("full"), "cases": [finish_case(_record()), failed]}
    fixed = finish_case({**_record(), "id": "ingest_api", "title": "REST API → warehouse"})
    rerun = {
        **_suite_result("full"),
        "started_at": "2026-11-30T16:00:00+00:00",
        "duration_s": 90.0,
        "cases": [fixed],
    }
    merged = merge_rerun(previous, rerun)
    assert [case["id"] for case in merged["cases"]] == ["ingest_db_1000", "ingest_api"]
    assert "error" not in merged["cases"][1]
    assert merged["started_at"] == previous["started_at"]
    text = render_suite(merged)
    assert "NameError" not in text and "##### REST API → warehouse" in text
    line = "Re-run of ingest_api (`--cases`) at 2026-11-30T16:00:00+00:00: 3 rounds, 1.5 min"
    assert line in text


def test_save_merges_suites_of_the_same_day(tmp_path):
    import json
    from datetime import date

    day = date(2026, 11, 30)
    save(tmp_path, _suite_result("quick"), day)
    path = save(tmp_path, _suite_result("ingest"), day)
    assert path.name == "2026-11-30.json"
    assert sorted(json.loads(path.read_text())["suites"]) == ["ingest", "quick"]


def _scaled(variant_rows: dict[str, tuple[int, float, float]]) -> dict:
    samples = {
        name: [{"rows": rows, "work_s": work, "wall_s": work + 1, "peak_rss_mib": rss}]
        for name, (rows, work, rss) in variant_rows.items()
    }
    labels = {name: name.replace("x", "") + "×" for name in variant_rows}
    return finish_case({"id": "e2e", "baseline": "x1", "labels": labels, "samples": samples})


def test_e2e_lines_give_each_step_of_the_scale_curve():
    case = _scaled(
        {
            "x1": (1000, 10.0, 500.0),
            "x10": (10000, 40.0, 550.0),
            "x100": (100000, 400.0, 605.0),
        }
    )
    assert e2e_lines([case]) == [
        "- 1× → 10×: rows loaded ×10.0 (1,000 → 10,000), job time ×4.00 (10.0 → 40.0 s),"
        " peak RSS ×1.10 (500 → 550 MiB).",
        "- 10× → 100×: rows loaded ×10.0 (10,000 → 100,000), job time ×10.00 (40.0 → 400 s),"
        " peak RSS ×1.10 (550 → 605 MiB).",
    ]


def test_time_cases_show_job_time_and_memory_ratios():
    case = _scaled({"x1": (1000, 10.0, 500.0), "x10": (10000, 40.0, 550.0)})
    text = case_section({**case, "metric": "time"})
    assert "| variant | job s | × baseline | wall s | × baseline | peak RSS MiB | × |" in text
    assert "| 1× | 10.0 (10.0–10.0) | 1.00× (baseline) | 11.0 (11.0–11.0) |" in text
    row = "| 10× | 40.0 (40.0–40.0) | 4.00× | 41.0 (41.0–41.0) | 3.73× | 550 (550–550) | 1.10× |"
    assert row in text


def test_scale_lines_compare_ours_at_two_sizes():
    def case(size: str, work: float, rss: float) -> dict:
        sample = {"rows": 1, "work_s": work, "wall_s": work, "peak_rss_mib": rss}
        return finish_case(
            {"size": size, "baseline": "ours", "labels": {}, "samples": {"ours": [sample]}}
        )

    lines = scale_lines([case("325,158 rows", 10.0, 400.0), case("1,083,860 rows", 30.0, 440.0)])
    assert lines == [
        "- Ours from 325,158 rows to 1,083,860 rows: load time ×3.00, peak RSS 400 → 440 MiB"
        " (×1.10; target: independent of table size)."
    ]


def test_suites_keep_the_issue_requirements():
    from bench.suites import ALL_CASES, SUITES

    quick, full = SUITES["quick"], SUITES["full"]
    # quick is a smoke run of every case family; the dbt case is in `elt run` there
    assert set(quick.cases) == set(ALL_CASES) - {"incremental_dbt"}
    # full: every case, three rounds, ingestion ≥ 1M rows (1 jafgen year ≈ 108k items),
    # the end-to-end curve at 1×, 10×, 100×
    others = {"publish", "gx_vs_sql", "prefect_vs_dbt", "airflow_parse", "scheduled"}
    others.add("prefect_vs_dbt_generated")  # issue 21: orchestration on the 200-model project
    others.add("airflow_e2e")  # issue 21: `elt airflow test` vs `elt run`, whole demo pipeline
    assert set(ALL_CASES) | others == set(full.cases)
    assert full.publish_scales == (100, 1000)  # issue 21: publish from 100× to 1000×
    assert full.repeats >= 3 and (full.e2e_repeats or full.repeats) >= 3
    assert full.base_years >= 1.0 and max(full.ingest_factors) >= 10
    assert full.e2e_scales == (1, 10, 100)


def _absolute_target(bound: float) -> dict:
    return {
        "text": "ours ≤ 3 s",
        "variant": "ours",
        "against": None,
        "on": "work_s",
        "op": "<=",
        "bound": bound,
    }


def test_an_absolute_target_bounds_the_value_itself():
    record = finish_case({**_record(), "targets": [_absolute_target(3.0), _absolute_target(1.5)]})
    within, beyond = record["verdicts"]
    assert within["ratio"] == pytest.approx(2.0) and within["unit"] == "s" and within["met"]
    assert beyond["met"] is False
    assert "Target ours ≤ 3 s: measured 2.00 s — met." in case_section(record)


def test_measured_values_keep_their_unit():
    from bench.stats import fmt_measured

    assert fmt_measured(1.234) == "1.23×"
    assert fmt_measured(0.048, "%") == "4.8 %"
    assert fmt_measured(512.4, "MiB") == "512 MiB"
    assert fmt_measured(None, "s") == "–"


def _suite_record(tmp_path, minutes: float):
    path = tmp_path / "make-test.json"
    path.write_text(
        json.dumps(
            {
                "finished_at": "2026-12-04T20:00:00+00:00",
                "duration_s": minutes * 60,
                "passed": 680,
                "failed": 0,
                "exit_status": 0,
                "workers": 2,
                "load_average_start": 0.4,
                "load_average_end": 2.1,
                "cpus": 2,
            }
        )
    )
    return path


def test_the_target_table_lists_every_target_of_the_run_and_the_test_suite(tmp_path):
    from bench.report import render_suite

    script = {
        "id": "prefect_vs_dbt",
        "group": "external",
        "title": "bench/prefect_vs_dbt.py",
        "command": "python bench/prefect_vs_dbt.py",
        "stdout": "a table",
        "wall_s": 60.0,
        "peak_rss_mib": 300.0,
        "verdicts": [verdict("Airflow ≤ 1.5× dbt build", 1.8, "<=", 1.5)],
    }
    result = {**_suite_result("full"), "cases": [finish_case(_record()), script]}
    text = render_suite(result, _suite_record(tmp_path, 23.5))
    targets = text.split("#### Targets", 1)[1].split("####", 1)[0]
    assert "1 of 4 targets met in this run." in targets
    assert "| ≥ 0.5× COPY | 0.50× | met |" in targets
    assert "| Airflow ≤ 1.5× dbt build | 1.80× | **MISSED**" in targets
    assert "| 23.5 min | **MISSED**" in targets and "680 passed" in targets
    assert "Target Airflow ≤ 1.5× dbt build: measured 1.80×" in text  # under the script too


def test_no_suite_record_no_suite_row(tmp_path):
    from bench.report import targets_section

    assert targets_section({"cases": []}, tmp_path / "missing.json") == ""
    fast = targets_section({"cases": []}, _suite_record(tmp_path, 7.5))
    assert "1 of 1 targets met" in fast and "| 7.50 min | met |" in fast
