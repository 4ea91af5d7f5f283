"""``elt docs build``: the static portal in ``.elt/site``.

result = build_site()                     # reads elt_meta, runs `dbt docs generate`
result.index  # .elt/site/index.html
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from elt import paths, settings
from elt.docs_site import assets, history, pages


@dataclass
class SiteResult:
    """What a build wrote."""

    root: Path
    runs: int
    failed_checks: int
    dbt_docs: bool
    gx_docs: bool

    @property
    def index(self) -> Path:
        """The home page."""
        return self.root / "index.html"


def site_dir() -> Path:
    """Where the site is built: ``.elt/site``."""
    return paths.state_dir() / "site"


def build_site(
    url: str | None = None,
    *,
    target: Path | None = None,
    dbt_docs: bool = True,
    gx_source: Path | None = None,
    limit: int = 50,
) -> SiteResult:
    """Build the portal from the warehouse's run history (newest ``limit`` runs).

    ``dbt_docs=False`` skips ``dbt docs generate`` (the pages then link no dbt docs).
    The site is written to a fresh folder next to ``target`` and swapped in at the end,
    so a server that is serving the old one never shows half a site.
    """
    url = url or settings.warehouse_url()
    target = target or site_dir()
    staging = target.with_name(target.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    data = history.load(url, limit=limit)
    links = pages.Links()
    if dbt_docs:
        generated = assets.generate_dbt_docs(paths.state_dir() / "dbt-docs")
        if assets.copy_dbt_docs(generated, staging / "dbt"):
            links.dbt_index = "dbt/index.html#!/overview?g_v=1"
            _describe_dbt_tests(data.failed_checks, staging / "dbt" / "manifest.json")
    if assets.copy_gx_docs(staging / "gx", gx_source):
        links.gx_index = "gx-results.html"
        links.gx_pages = assets.gx_pages_by_run(staging / "gx", [r.run_id for r in data.runs])
    _write_pages(staging, data, links)
    _swap(staging, target)
    return SiteResult(
        root=target,
        runs=len(data.runs),
        failed_checks=len(data.failed_checks),
        dbt_docs=links.dbt_index is not None,
        gx_docs=links.gx_index is not None,
    )


def _describe_dbt_tests(failed: list[history.FailedCheck], manifest: Path) -> None:
    """Fill the model and column a failed dbt test checks, from dbt's manifest."""
    nodes = json.loads(manifest.read_text(encoding="utf-8")).get("nodes", {})
    for check in failed:
        node = nodes.get(check.details.get("unique_id", "")) if check.kind == "dbt" else None
        if not node:
            continue
        attached = node.get("attached_node") or ""
        check.table = attached.split(".")[-1] or check.table
        check.column = node.get("column_name") or check.column
        check.details["sql"] = node.get("compiled_code") or node.get("raw_code")


def _write_pages(root: Path, data: history.History, links: pages.Links) -> None:
    (root / "style.css").write_text(pages.STYLE, encoding="utf-8")
    (root / "index.html").write_text(pages.home(data, links), encoding="utf-8")
    if links.gx_index:
        (root / links.gx_index).write_text(pages.gx_results(data, links), encoding="utf-8")
    for run in data.runs:
        failed = [c for c in data.failed_checks if c.run_id == run.run_id]
        page = root / pages.run_page(run.run_id)
        page.parent.mkdir(exist_ok=True)
        page.write_text(pages.run_detail(run, failed, links), encoding="utf-8")
    for check in data.failed_checks:
        page = root / pages.check_page(check)
        page.parent.mkdir(exist_ok=True)
        page.write_text(pages.check_detail(check, links), encoding="utf-8")


def _swap(staging: Path, target: Path) -> None:
    old = target.with_name(target.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)
