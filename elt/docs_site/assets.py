"""Copy dbt docs and GX Data Docs into the site, made to work offline.

GX's pages load Bootstrap, jQuery, fonts and a logo from CDNs; the copies drop every tag
that would fetch from another host (their content is static HTML, so it still reads well).
dbt's ``index.html`` is self-contained; its copied manifest has usage tracking turned off so
the page never calls home.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from elt import paths

# a tag that fetches from another host when the page loads: stylesheets, scripts, images...
_REMOTE_TAG = re.compile(
    r"<(script)\b[^>]*\bsrc\s*=\s*[\"']?(?:https?:)?//[^>]*>.*?</script\s*>"
    r"|<(?:link|img|iframe|source|embed)\b[^>]*\b(?:href|src)\s*=\s*[\"']?(?:https?:)?//[^>]*>",
    re.IGNORECASE | re.DOTALL,
)
_REMOTE_CSS_URL = re.compile(r"url\(\s*[\"']?(?:https?:)?//[^)]*\)", re.IGNORECASE)
_OFFLINE_STYLE = (
    "<style>body{font-family:system-ui,sans-serif;margin:16px}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px}"
    ".hide,.d-none{display:none}</style>"
)
DBT_FILES = ("index.html", "manifest.json", "catalog.json")


def strip_remote(html: str) -> str:
    """``html`` without any tag or CSS ``url()`` that loads something from another host.

    Links a person may click (``<a href="https://…">``) stay: they fetch nothing by themselves.
    """
    html = _REMOTE_TAG.sub("", html)
    html = _REMOTE_CSS_URL.sub("none", html)
    return html.replace("</head>", _OFFLINE_STYLE + "</head>", 1)


def copy_gx_docs(target: Path, source: Path | None = None) -> Path | None:
    """Copy GX Data Docs (default ``.elt/docs/gx``) into ``target``, offline; None if absent."""
    source = source or paths.state_dir() / "docs" / "gx"
    if not (source / "index.html").exists():
        return None
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)
    for page in target.rglob("*.html"):
        page.write_text(strip_remote(page.read_text(encoding="utf-8")), encoding="utf-8")
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
    return target / "index.html"
