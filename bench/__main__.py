"""``python -m bench SUITE``: run a benchmark suite, save the JSON, update BENCHMARKS.md.

.venv/bin/python -m bench quick            # make bench-quick
.venv/bin/python -m bench ingest           # make bench-ingest
.venv/bin/python -m bench full             # make bench
.venv/bin/python -m bench quick --cases ingest_api --repeats 1 --no-report
.venv/bin/python -m bench full --cases ingest_api   # re-run one case of today's `make bench`
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path

from bench import report
from bench.harness import run_suite, say
from bench.results import load_suite, merge_rerun, save
from bench.suites import SUITES


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run; exit code 1 when a case failed."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("suite", choices=sorted(SUITES))
    parser.add_argument("--repeats", type=int, help="rounds of every case (default: the suite's)")
    parser.add_argument("--cases", help="comma-separated case names to run (default: all)")
    parser.add_argument(
        "--no-report", action="store_true", help="do not write results/ or BENCHMARKS.md"
    )
    args = parser.parse_args(argv)
    suite = SUITES[args.suite]
    if args.repeats:
        suite = dataclasses.replace(suite, repeats=args.repeats, e2e_repeats=None)
    only = args.cases.split(",") if args.cases else None
    write = None if args.no_report else _writer(suite.name, rerun=bool(only))
    result = run_suite(suite, only=only, on_progress=write)
    if write:
        path, markdown = write(result)
        say(f"results in {path}; tables in {markdown}")
    print(report.render_suite(result))
    failed = [case["id"] for case in result["cases"] if case.get("error")]
    if failed:
        say(f"failed cases: {', '.join(failed)}")
    return 1 if failed else 0


def _writer(suite: str, *, rerun: bool) -> Callable[[dict], tuple[Path, Path]]:
    """What saves a run (so far) to bench/results and its tables to BENCHMARKS.md; a run of
    some cases (``--cases``) replaces those cases in the day's run of the suite."""
    previous = load_suite(report.results_dir(), suite) if rerun else None

    def write(result: dict) -> tuple[Path, Path]:
        if previous:
            result = merge_rerun(previous, result)
        return save(report.results_dir(), result), report.update_benchmarks(result)

    return write


if __name__ == "__main__":
    sys.exit(main())
