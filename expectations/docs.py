"""Data Docs: built once per gate run into ``.elt/docs/gx``, with old results pruned.

GX's own checkpoint action rebuilds the whole site once per validated suite; building once
for all the run's results is about 3x faster. The index page lists every stored result, so
results beyond the newest ``KEEP_RUNS`` per suite are deleted (with their pages) first.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from expectations import context as gx_context

KEEP_RUNS = 30


def prune_results(keep: int = KEEP_RUNS) -> int:
    """Delete stored validation results (and their pages) beyond the newest ``keep`` per suite.

    Results live at ``<suite path>/<run name>/<run time>/<batch>.json``; returns how many
    run folders were removed.
    """
    root = gx_context.results_dir()
    if not root.exists():
        return 0
    runs_by_suite: dict[Path, list[Path]] = {}
    for result in root.rglob("*.json"):
        run_time_dir = result.parent
        suite_dir = run_time_dir.parent.parent
        runs_by_suite.setdefault(suite_dir, [])
        if run_time_dir not in runs_by_suite[suite_dir]:
            runs_by_suite[suite_dir].append(run_time_dir)
    removed = 0
    pages = gx_context.docs_dir() / "validations"
    for run_dirs in runs_by_suite.values():
        run_dirs.sort(key=lambda path: path.name)  # run times sort as text (…T…Z)
        for old in run_dirs[:-keep] if keep else run_dirs:
            relative = old.relative_to(root)
            shutil.rmtree(old, ignore_errors=True)
            shutil.rmtree(pages / relative, ignore_errors=True)
            for parent in (old.parent, (pages / relative).parent):
                if parent.exists() and not any(parent.iterdir()):
                    parent.rmdir()
            removed += 1
    return removed


def build(context: Any, checkpoint_results: list[Any]) -> Path | None:
    """Build the pages of these results and their suites, and the index; returns the index."""
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
    )

    identifiers: list[Any] = []
    for checkpoint_result in checkpoint_results:
        for result_id, suite_result in checkpoint_result.run_results.items():
            identifiers += [result_id, ExpectationSuiteIdentifier(name=suite_result.suite_name)]
    if not identifiers:
        return None
    prune_results()
    context.build_data_docs(site_names=[gx_context.DOCS_SITE], resource_identifiers=identifiers)
    index = gx_context.docs_dir() / "index.html"
    return index if index.exists() else None
