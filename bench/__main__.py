"""``python -m bench SUITE``: run a benchmark suite, save the JSON, update BENCHMARKS.md.

.venv/bin/python -m bench quick            # make bench-quick
.venv/bin/python -m bench ingest           # make bench-ingest
.venv/bin/python -m bench full             # make bench
.venv/bin/python -m bench quick --cases ingest_api --repeats 1 --no-report
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from bench import report
from bench.harness import run_suite, say
from bench.results import save
from bench.suites import SUITES


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run; exit code 1 when a case failed."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("suite", choices=sorted(SUITES))
    parser.add_argument("--repeats", type=int, help="rounds per case (default: the suite's, 3)")
    parser.add_argument("--cases", help="comma-separated case names to run (default: all)")
    parser.add_argument(
        "--no-report", action="store_true", help="do not write results/ or BENCHMARKS.md"
    )
    args = parser.parse_args(argv)
    suite = SUITES[args.suite]
    if args.repeats:
        suite = dataclasses.replace(suite, repeats=args.repeats)
    only = args.cases.split(",") if args.cases else None
    result = run_suite(suite, only=only)
    if not args.no_report:
        path = save(report.results_dir(), result)
        markdown = report.update_benchmarks(result)
        say(f"results in {path}; tables in {markdown}")
    print(report.render_suite(result))
    failed = [case["id"] for case in result["cases"] if case.get("error")]
    if failed:
        say(f"failed cases: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
