"""Copy dbt docs and GX Data Docs into the site, made to work offline.

GX's pages load Bootstrap, jQuery, Font Awesome and more from CDNs; the copies load the same
libraries from ``assets/vendor`` (files shipped by PyPI packages: xstatic-jquery,
xstatic-bootstrap 4, xstatic-font-awesome) and drop the tags no package ships, plus GX's
newsletter bar. dbt's ``index.html`` is self-contained; its copied manifest has usage
tracking turned off so the page never calls home. Both get a bar linking back to the portal.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from elt import paths
from elt.docs_site.layout import BACK_BAR_STYLE, DBT_NARROW_STYLE, GX_STYLE, back_bar

# a tag that fetches from another host when the page loads: stylesheets, scripts, images...
_REMOTE_TAG = re.compile(
    r"<(script)\b[^>]*\bsrc\s*=\s*[\"']?(?:https?:)?//[^>]*>.*?</script\s*>"
    r"|<(?:link|img|iframe|source|embed)\b[^>]*\b(?:href|src)\s*=\s*[\"']?(?:https?:)?//[^>]*>",
    re.IGNORECASE | re.DOTALL,
)
_REMOTE_CSS_URL = re.compile(r"url\(\s*[\"']?(?:https?:)?//[^)]*\)", re.IGNORECASE)
DBT_FILES = ("index.html", "manifest.json", "catalog.json")


# CDN file name -> the local copy under assets/vendor (see VENDOR)
_LOCAL = {
    "jquery-3.7.1.min.js": "jquery.min.js",
    "bootstrap.min.js": "bootstrap.bundle.min.js",  # the bundle carries popper
    "bootstrap.min.css": "bootstrap.min.css",
    "all.min.css": "fontawesome/css/all.min.css",
    "bootstrap-table.min.js": "gx-table.js",  # our stand-in: no PyPI package ships it
}
STATIC = Path(__file__).parent / "static"  # the portal's own scripts
# GX's fixed footer bar asking for the newsletter covers the page's last lines
_NEWSLETTER = re.compile(r"<footer>\s*<p>[^<]*newsletter.*?</footer>", re.IGNORECASE | re.DOTALL)


def _vendor_files() -> dict[str, Path]:
    """Local file name -> file inside an installed PyPI package."""
    import plotly
    import xstatic.pkg.bootstrap as bootstrap
    import xstatic.pkg.font_awesome as font_awesome
    import xstatic.pkg.jquery as jquery

    return {
        "../portal.js": STATIC / "portal.js",
        "vendor/gx-table.js": STATIC / "gx-table.js",
        "plotly.min.js": Path(plotly.__file__).parent / "package_data" / "plotly.min.js",
        "vendor/jquery.min.js": Path(jquery.BASE_DIR) / "jquery.min.js",
        "vendor/bootstrap.bundle.min.js": Path(bootstrap.BASE_DIR)
        / "js"
        / "bootstrap.bundle.min.js",
        "vendor/bootstrap.min.css": Path(bootstrap.BASE_DIR) / "css" / "bootstrap.min.css",
        "vendor/fontawesome": Path(font_awesome.BASE_DIR),
    }


def write_static(site: Path) -> None:
    """Copy the JavaScript and CSS the site uses from their PyPI packages into ``assets/``."""
    for name, source in _vendor_files().items():
        target = site / "assets" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            for part in ("css", "webfonts"):
                shutil.copytree(source / part, target / part, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target)


def _localise(match: re.Match[str], root: str) -> str:
    tag = match.group(0)
    url = re.search(r"(?:href|src)\s*=\s*[\"']?([^\"' >]+)", tag, re.IGNORECASE)
    name = url.group(1).rstrip("/").rsplit("/", 1)[-1] if url else ""
    local = _LOCAL.get(name)
    if local is None or "filter-control" in tag or "datepicker" in tag:
        return ""
    path = f"{root}assets/vendor/{local}"
    if tag.lower().startswith("<script"):
        return f'<script src="{path}"></script>'
    return f'<link rel="stylesheet" href="{path}">'


def strip_remote(html: str, root: str = "") -> str:
    """``html`` with every tag that loads from another host pointed at the local copy of the
    same library (``root``: the way from the page up to the site root) or removed.

    Links a person may click (``<a href="https://…">``) stay: they fetch nothing by themselves.
    """
    html = _REMOTE_TAG.sub(lambda m: _localise(m, root), html)
    html = _REMOTE_CSS_URL.sub("none", html)
    html = _NEWSLETTER.sub("", html)
    html = html.replace("</head>", f"<style>{BACK_BAR_STYLE}{GX_STYLE}</style></head>", 1)
    return re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + back_bar(root), html, count=1)


_LOCAL_HREF = re.compile(r'href="([^"#:?]+\.html)"')


def _drop_dead_links(html: str, page: Path, gx_root: Path) -> str:
    """Links to GX pages that no longer exist (a suite deleted since) lose their href: GX's
    index keeps listing old validation results whose suite page is gone. Links out of the
    GX folder (to the portal, written later) are kept."""

    def keep(match: re.Match[str]) -> str:
        linked = (page.parent / match.group(1)).resolve()
        if not linked.is_relative_to(gx_root.resolve()) or linked.exists():
            return match.group(0)
        return f'data-missing="{match.group(1)}"'

    return _LOCAL_HREF.sub(keep, html)


def copy_gx_docs(target: Path, source: Path | None = None) -> Path | None:
    """Copy GX Data Docs (default ``.elt/docs/gx``) into ``target``, offline; None if absent."""
    source = source or paths.state_dir() / "docs" / "gx"
    if not (source / "index.html").exists():
        return None
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)
    site = target.parent
    for page in target.rglob("*.html"):
        root = "../" * (len(page.relative_to(site).parts) - 1)
        html = strip_remote(page.read_text(encoding="utf-8"), root)
        html = _drop_dead_links(html, page, target)
        page.write_text(html, encoding="utf-8")
    for sheet in target.rglob("*.css"):
        sheet.write_text(_REMOTE_CSS_URL.sub("none", sheet.read_text(encoding="utf-8")))
    return target / "index.html"


def gx_pages_by_run(gx_root: Path, run_ids: list[str]) -> dict[str, list[tuple[str, str]]]:
    """The validation result pages of each run: run id -> [(suite label, path from site root)].

    GX keeps them at ``validations/<suite path>/<run name>/<run time>/<batch>.html``, and the
    gate names GX runs after our run ids.
    """
    wanted = set(run_ids)
    found: dict[str, list[tuple[str, str]]] = {}
    validations = gx_root / "validations"
    if not validations.exists():
        return found
    site_root = gx_root.parent
    for page in sorted(validations.rglob("*.html")):
        run_dir = page.parent.parent
        if run_dir.name not in wanted:
            continue
        suite = ".".join(run_dir.parent.relative_to(validations).parts)
        label = f"{suite}: {page.stem}"
        found.setdefault(run_dir.name, []).append((label, page.relative_to(site_root).as_posix()))
    return found


def generate_dbt_docs(target_path: Path) -> Path:
    """Run ``dbt docs generate`` in-process into ``target_path``; raise with dbt's error."""
    from elt import dbt

    outcome = dbt.invoke("docs generate", target_path=target_path, quiet=True)
    if not outcome.success or not (target_path / "index.html").exists():
        raise RuntimeError(
            f"dbt docs generate failed: {outcome.error or 'no index.html written'};"
            " check that the warehouse runs (`elt up`) and see .elt/logs/dbt.log"
        )
    return target_path


def _fix_dbt_requests(html: str) -> str:
    """dbt's page requests two URLs that cannot exist (404s in every browser console): an
    un-built favicon path, and SVG icons whose angular template the browser fetches before
    angular fills it in. Point the favicon nowhere and let angular set the icon links."""
    html = html.replace("href=\"${require('./assets/favicons/favicon.ico')}\"", 'href="data:,"')
    return html.replace('<use xlink:href="{{', '<use ng-attr-xlink:href="{{')


def copy_dbt_docs(generated: Path, target: Path) -> Path | None:
    """Copy dbt's ``index.html``, ``manifest.json`` and ``catalog.json`` into ``target``."""
    if not (generated / "index.html").exists():
        return None
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for name in DBT_FILES:
        if (generated / name).exists():
            shutil.copy2(generated / name, target / name)
    manifest = target / "manifest.json"
    if manifest.exists():  # dbt docs sends page views home when this is on
        data = json.loads(manifest.read_text(encoding="utf-8"))
        data.setdefault("metadata", {})["send_anonymous_usage_stats"] = False
        manifest.write_text(json.dumps(data), encoding="utf-8")
    index = target / "index.html"
    html = _fix_dbt_requests(index.read_text(encoding="utf-8"))
    html = html.replace("</head>", f"<style>{BACK_BAR_STYLE}{DBT_NARROW_STYLE}</style></head>", 1)
    html = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + back_bar("../", "float"), html, count=1)
    index.write_text(html, encoding="utf-8")
    return index
