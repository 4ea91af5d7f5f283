"""The jaffle-shop demo: three real sources the platform ingests.

* ``shop``: an OLTP PostgreSQL database (customers, orders, items, products, stores),
* ``social``: a paginated REST API of tweets with a bearer token,
* ``landing``: supplier CSV files in a landing zone (local folder or S3).

:func:`prepare` generates the data with jafgen, builds the three sources and declares them in
``.elt/env`` (``SHOP_DB_URL``, ``SOCIAL_API_URL``, ``SOCIAL_API_TOKEN``, ``LANDING_URL``, and
``LAKE_URL``, the folder the pipeline exports its marts to);
:func:`start_api` / :func:`stop_api` run the REST API in the background. Heavy imports
(jafgen, psycopg2, boto3) happen inside the functions so ``python -m elt.demo.api`` stays light.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from elt import paths

if TYPE_CHECKING:
    from elt.demo.generate import Progress

__all__ = [
    "DemoSummary",
    "api_running",
    "api_url",
    "data_dir",
    "demo_dir",
    "ensure_data",
    "prepare",
    "revive_api",
    "start_api",
    "stop_api",
]

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class DemoSummary:
    """What :func:`prepare` built (no secrets: the shop URL and token stay in ``.elt/env``)."""

    data_dir: Path
    generated: bool  # False when data for the same years/seed was already on disk
    rows: dict[str, int]  # per CSV file
    shop_database: str
    shop_rows: dict[str, int]  # per shop table
    api_url: str
    landing_objects: list[str]


def demo_dir() -> Path:
    """The demo's state folder, ``.elt/demo``."""
    path = paths.state_dir() / "demo"
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path:
    """Where the generated CSV files live."""
    return demo_dir() / "data"


def ensure_data(
    *, years: float = 1.0, seed: int = 42, force: bool = False, progress: Progress | None = None
) -> tuple[dict[str, Path], bool]:
    """The demo CSVs, generated unless the same years/seed are already on disk.

    Returns the files per entity and whether they were (re)generated now.
    """
    from elt.demo.generate import COLUMNS, count_rows, generate

    folder = data_dir()
    files = {name: folder / f"{name}.csv" for name in COLUMNS}
    wanted = {"years": years, "seed": seed, "generator": f"jafgen {version('jafgen')}"}
    manifest = folder / MANIFEST
    complete = all(path.is_file() for path in files.values())
    if not force and complete and _read_json(manifest).get("params") == wanted:
        return files, False
    manifest.unlink(missing_ok=True)  # half-regenerated data must not look complete
    files = generate(folder, years=years, seed=seed, progress=progress)
    rows = {name: count_rows(path) for name, path in files.items()}
    manifest.write_text(json.dumps({"params": wanted, "rows": rows}, indent=2) + "\n")
    return files, True


def prepare(
    *,
    years: float = 1.0,
    seed: int = 42,
    api_port: int | None = None,
    landing_url: str | None = None,
    lake_url: str | None = None,
    admin_url: str | None = None,
    shop_database: str = "shop",
    force: bool = False,
    progress: Progress | None = None,
) -> DemoSummary:
    """Generate the data, load the shop database, fill the landing zone, declare the sources.

    ``admin_url`` is a superuser URL of the PostgreSQL server that gets the shop database
    (default: the warehouse server, started if needed). ``landing_url`` defaults to the
    folder ``.elt/landing``, ``lake_url`` (the bucket the pipeline exports to) to the folder
    ``.elt/lake``. ``api_port`` defaults to a free port chosen once and kept.
    A running API is restarted when the data was regenerated.
    """
    from elt import settings
    from elt.demo.generate import count_rows
    from elt.demo.landing import write_landing
    from elt.demo.shop import load_shop

    files, generated = ensure_data(years=years, seed=seed, force=force, progress=progress)
    shop = load_shop(
        data_dir(),
        admin_url or settings.warehouse().url(),
        database=shop_database,
        # kept across reloads, so a process that read .elt/env earlier can still log in
        password=_stored_secret("shop_password"),
    )
    landing_url = landing_url or (paths.state_dir() / "landing").as_uri()
    objects = write_landing(data_dir(), landing_url)
    token = _stored_secret("api_token")
    url = f"http://127.0.0.1:{_api_port(api_port)}"
    settings.write_local_env(
        {
            # on the embedded warehouse its port is a placeholder, filled in when read
            "SHOP_DB_URL": settings.with_port_placeholder(shop.url),
            "SOCIAL_API_URL": url,
            "SOCIAL_API_TOKEN": token,
            "LANDING_URL": landing_url,
            "LAKE_URL": lake_url or (paths.state_dir() / "lake").as_uri(),
        }
    )
    if generated and api_running():
        stop_api()
        start_api()
    return DemoSummary(
        data_dir=data_dir(),
        generated=generated,
        rows={name: count_rows(path) for name, path in files.items()},
        shop_database=shop.database,
        shop_rows=shop.rows,
        api_url=url,
        landing_objects=objects,
    )


def api_url() -> str:
    """The demo API's base URL (its port is chosen once and kept)."""
    return f"http://127.0.0.1:{_api_port(None)}"


def start_api() -> int:
    """Start the tweets API in the background (idempotent); returns its pid."""
    from elt.demo.background import start_background

    tweets = data_dir() / "tweets.csv"
    if not tweets.is_file():
        raise FileNotFoundError(f"{tweets} is missing: prepare the demo data first")
    _stored_secret("api_token")
    return start_background(
        tweets, _token_file(), _api_port(None), demo_dir() / "api.log", _pid_file()
    )


def revive_api(base_urls: Iterable[str | None] | None = None) -> int | None:
    """Start the tweets API again after a restart (``elt down`` stops it), when the demo was
    prepared in this state folder; returns its pid, or None when there is no demo here.

    With ``base_urls`` (the REST sources a command is about to read), only when one of them
    is the demo API's URL.
    """
    state = paths.state_dir() / "demo"
    if not (state / "api_port").is_file() or not (state / "data" / "tweets.csv").is_file():
        return None
    if base_urls is not None and not any(
        (url or "").rstrip("/").startswith(api_url()) for url in base_urls
    ):
        return None
    return start_api()


def stop_api() -> bool:
    """Stop the background tweets API; False when it was not running."""
    from elt.demo.background import stop_background

    return stop_background(_pid_file())


def api_running() -> bool:
    """True when the background tweets API is up and healthy."""
    from elt.demo.background import is_running

    return is_running(_pid_file(), _api_port(None))


def _pid_file() -> Path:
    return demo_dir() / "api.pid"


def _token_file() -> Path:
    return demo_dir() / "api_token"


def _stored_secret(name: str) -> str:
    """A demo secret (API token, shop password): generated once into a 0600 file, reused."""
    from elt.demo.api import read_token_file

    path = demo_dir() / name
    if not path.exists():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it meanwhile
            return read_token_file(path)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
    return read_token_file(path)


def _api_port(configured: int | None) -> int:
    """The configured port (then kept), else the kept one, else a free port chosen now."""
    path = demo_dir() / "api_port"
    if configured is None:
        try:
            return int(path.read_text().strip())
        except (OSError, ValueError):
            configured = _free_port()
    path.write_text(f"{configured}\n")
    return configured


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return cast(dict[str, Any], json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}
