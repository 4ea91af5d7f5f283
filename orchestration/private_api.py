"""Checks that the private framework names an adapter relies on are still there.

Each orchestrator's ``compat.py`` lists the private (or internal) names it uses, with the
parameters it calls them with; a unit test runs :func:`problems` over that list, so an
upgrade that renames or reshapes one fails a test instead of a production run.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass


@dataclass(frozen=True)
class PrivateName:
    """``module:attr.path``, and the parameter names we pass (None: not called by us)."""

    module: str
    path: str
    parameters: tuple[str, ...] | None = None
    why: str = ""

    def resolve(self) -> object:
        """The object the name points at (raises when it is gone)."""
        target: object = importlib.import_module(self.module)
        for part in self.path.split("."):
            target = getattr(target, part)
        return target


def problems(names: list[PrivateName]) -> list[str]:
    """One line per name that is gone, or whose signature lacks a parameter we pass."""
    found = []
    for name in names:
        where = f"{name.module}:{name.path}"
        try:
            target = name.resolve()
        except (ImportError, AttributeError) as exc:
            found.append(f"{where} is gone ({exc}); used for: {name.why}")
            continue
        if name.parameters is None:
            continue
        declared = list(inspect.signature(target).parameters)  # type: ignore[arg-type]
        missing = [p for p in name.parameters if p not in declared]
        if missing:
            found.append(f"{where} no longer takes {', '.join(missing)} (takes {declared})")
    return found
