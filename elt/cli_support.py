"""What every `elt` sub-command shares: one way to fail, one way to load the config."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.console import Console

from elt import settings
from elt.redact import redact

if TYPE_CHECKING:
    from elt.config import ProjectConfig

err = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one redacted error line (and any detail lines) and return the Exit to raise."""
    err.print(f"[bold red]error:[/] {redact(message)}", highlight=False)
    return typer.Exit(code)


def load_config(*, check_env: bool = True) -> ProjectConfig:
    """``pipelines.yml``, validated; a bad file exits 2 with the problem and the fix."""
    from elt.config import ConfigError, load

    settings.load_local_env()
    try:
        return load(check_env=check_env)
    except ConfigError as exc:
        raise fail(f"{exc}\nRun `elt validate-config` for details.", 2) from None
