"""Which warehouse table a rule or a suite checks, and at which stage of a run.

A bare name (``orders``) is a mart, checked in the audit schema before publish; a name
``raw_<source>.<table>`` is a raw table, checked after ingest. Nothing here imports GX.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Stage = Literal["raw", "audit"]
STAGES: tuple[Stage, ...] = ("raw", "audit")


class TargetError(ValueError):
    """A table name that is neither a mart nor a raw table."""


@dataclass(frozen=True, order=True)
class Target:
    """A table to check: ``label`` is how pipelines.yml names it (``orders``, ``raw_shop.orders``).

    Audit tables carry no schema: the audit datasource's connection puts the audit schema on
    the search path, so the same GX files work whatever ``ELT_DBT_SCHEMA`` says.
    """

    stage: Stage
    schema: str | None
    table: str

    @property
    def label(self) -> str:
        """The name as written in pipelines.yml."""
        return f"{self.schema}.{self.table}" if self.schema else self.table

    @property
    def datasource(self) -> str:
        """The GX data source holding this table's asset (one per stage)."""
        return self.stage

    def qualified(self, audit_schema: str) -> tuple[str, str]:
        """(schema, table) in the warehouse."""
        return (self.schema or audit_schema, self.table)


def target_of(name: str) -> Target:
    """The target a ``table:`` value of a rule (or a suite's table) names."""
    parts = name.split(".")
    if len(parts) == 1:
        return Target("audit", None, name)
    if len(parts) == 2 and parts[0].startswith("raw_") and parts[0] != "raw_":
        return Target("raw", parts[0], parts[1])
    raise TargetError(
        f"table {name!r} is neither a mart nor a raw table: write a mart's bare name (checked"
        " in the audit schema before publish) or raw_<source>.<table> (checked after ingest)"
    )


def generated_suite_name(pipeline: str, target: Target) -> str:
    """The suite generated from a pipeline's rules on one table: ``<pipeline>.<label>``."""
    return f"{pipeline}.{target.label}"
