"""``elt docs build``: the static portal in ``.elt/site``.

result = build_site()                     # reads elt_meta, runs `dbt docs generate`
result.index  # .elt/site/index.html
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from elt.config import ProjectConfig

import shutil
from dataclasses import dataclass
from pathlib import Path

from elt import lineage, paths, settings
from elt.docs_site import asset_pages, assets, catalog, history, layout, pages, published_relations


@dataclass
class SiteResult:
    """What a build wrote."""

    root: Path
    runs: int
    failed_checks: int
    dbt_docs: bool
    gx_docs: bool
    marts: int = 0

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
    config: ProjectConfig | None = None,
) -> SiteResult:
    """Build the portal from the warehouse's run history (newest ``limit`` runs).

    ``dbt_docs=False`` skips ``dbt docs generate`` (the pages then link no dbt docs).
    ``config`` (default: ``pipelines.yml``) gives owners and freshness thresholds.
    The site is written to a fresh folder next to ``target`` and swapped in at the end,
    so a server that is serving the old one never shows half a site.
    """
    url = url or settings.warehouse_url()
    target = target or site_dir()
    config = config if config is not None else _config()
    staging = target.with_name(target.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    links = layout.Links()
    manifest_path = None
    if dbt_docs:
        generated = assets.generate_dbt_docs(paths.state_dir() / "dbt-docs")
        if assets.copy_dbt_docs(generated, staging / "dbt"):
            links.dbt_index = "dbt/index.html#!/overview?g_v=1"
            manifest_path = staging / "dbt" / "manifest.json"
    data = history.load(
        url, limit=limit, config=config, manifest=catalog.load_manifest(manifest_path)
    )
    if manifest_path is not None:
        published_relations.name_published(
            manifest_path.parent,
            [mart.name for mart in data.catalog.marts],
            settings.published_schema(),
            settings.dbt_schema(),
        )
    if assets.copy_gx_docs(staging / "gx", gx_source):
        links.gx_index = "gx-results.html"
        links.gx_pages = assets.gx_pages_by_run(staging / "gx", [r.run_id for r in data.runs])
    assets.write_static(staging)
    _write_pages(staging, data, links)
    _swap(staging, target)
    return SiteResult(
        root=target,
        runs=len(data.runs),
        failed_checks=sum(1 for c in data.catalog.checks if c.status == "open"),
        dbt_docs=links.dbt_index is not None,
        gx_docs=links.gx_index is not None,
        marts=len(data.catalog.marts),
    )


def _config() -> ProjectConfig | None:
    """pipelines.yml without requiring its environment variables; None when there is none.

    A broken file stops the build with its problems: owners and freshness would be wrong."""
    from elt import config as elt_config

    if not paths.config_file().exists():
        return None
    return elt_config.load(check_env=False)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _write_pages(root: Path, data: history.History, links: layout.Links) -> None:
    _write(root / "style.css", layout.STYLE)
    _write(root / "index.html", pages.home(data, links))
    _write(root / "checks.html", pages.checks_index(data, links))
    events = [e for run in data.latest_per_pipeline() for e in lineage.read_events(run.run_id)]
    _write(root / "lineage.html", pages.lineage(data, links, events))
    if links.gx_index:
        _write(root / links.gx_index, pages.gx_results(data, links))
    for run in data.runs:
        _write(root / layout.run_page(run.run_id), pages.run_detail(run, data, links))
    known = {asset.name for asset in data.catalog.assets}
    for asset in data.catalog.assets:
        _write(root / layout.asset_page(asset.name), asset_pages.asset_detail(asset, known, links))
    for check in data.catalog.checks:
        _write(root / layout.check_page(check.key), asset_pages.check_detail(check, links))
    entries = [(a.name, a.kind, layout.asset_page(a.name)) for a in data.catalog.assets]
    entries += [
        (f"{c.name} on {c.table}", f"check, {c.status}", layout.check_page(c.key))
        for c in data.catalog.checks
    ]
    _write(root / "search-index.js", layout.search_index(entries))


def _swap(staging: Path, target: Path) -> None:
    old = target.with_name(target.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)
