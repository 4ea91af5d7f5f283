"""Which suites a pipeline's quality gate runs, and on which tables (no GX, no database).

Rules on the same table form one generated suite, ``<pipeline>.<table label>``; the
hand-written suites listed in ``quality.suites`` run beside them on the table named by the
suite's ``meta.table`` (or by the suite's name). One checkpoint per pipeline and stage
(``<pipeline>.audit``, ``<pipeline>.raw``) runs them; a raw table's checks on one load run in
the checkpoint ``<pipeline>.<raw schema>.by_load_id``, because a load id belongs to one source.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from elt.config import Pipeline, Rule
from expectations.rules import Spec, expectation_spec
from expectations.targets import Stage, Target, generated_suite_name, target_of


class QualityConfigError(ValueError):
    """The quality block of a pipeline cannot be run as written."""


@dataclass
class SuitePlan:
    """One suite to run on one table; ``specs`` is None for a hand-written suite."""

    name: str
    target: Target
    specs: list[Spec] | None = None
    rules: dict[str, Rule] = field(default_factory=dict)

    @property
    def generated(self) -> bool:
        """True when the suite is compiled from pipelines.yml."""
        return self.specs is not None


def generated_suites(pipe: Pipeline) -> list[SuitePlan]:
    """The suites compiled from the pipeline's rules, one per table, in rule order."""
    plans: dict[Target, SuitePlan] = {}
    for index, rule in enumerate(pipe.quality.rules):
        if rule.type.endswith("_anomaly"):  # compared with history in SQL: expectations/anomaly
            continue
        try:
            target = target_of(rule.table)
        except ValueError as exc:
            raise QualityConfigError(
                f"pipelines.yml: pipelines.{pipe.name}.quality.rules[{index}] ({rule.name}): {exc}"
            ) from None
        plan = plans.setdefault(
            target, SuitePlan(generated_suite_name(pipe.name, target), target, specs=[])
        )
        try:
            spec = expectation_spec(rule)
        except ValueError as exc:
            raise QualityConfigError(
                f"pipelines.yml: pipelines.{pipe.name}.quality.rules[{index}] ({rule.name}): {exc}"
            ) from None
        assert plan.specs is not None
        plan.specs.append(spec)
        plan.rules[str(rule.name)] = rule
    return list(plans.values())


def handwritten_suites(pipe: Pipeline, suites_dir: Path) -> list[SuitePlan]:
    """The hand-written suites listed in ``quality.suites``, read from their JSON files."""
    plans = []
    for name in pipe.quality.suites:
        path = suites_dir.joinpath(*name.split(".")).with_suffix(".json")
        where = f"pipelines.yml: pipelines.{pipe.name}.quality.suites: {name!r}"
        if not path.exists():
            raise QualityConfigError(
                f"{where}: no suite file {path}; add the GX suite there or remove the name"
            )
        try:
            meta = json.loads(path.read_text()).get("meta") or {}
            plans.append(SuitePlan(name=name, target=target_of(str(meta.get("table") or name))))
        except ValueError as exc:  # bad JSON, or meta.table names no mart/raw table
            raise QualityConfigError(f"{where} ({path}): {exc}") from None
    return plans


def for_stage(plans: list[SuitePlan], stage: Stage, schemas: set[str] | None = None):
    """The plans of one stage; for raw, optionally only tables in ``schemas``."""
    return [
        plan
        for plan in plans
        if plan.target.stage == stage and (schemas is None or plan.target.schema in schemas)
    ]


def checkpoint_name(pipeline: str, stage: Stage, schema: str | None, *, by_load: bool) -> str:
    """``<pipeline>.audit``, ``<pipeline>.raw``, or ``<pipeline>.<raw schema>[.by_load_id]``."""
    name = f"{pipeline}.{schema or stage}"
    return f"{name}.by_load_id" if by_load else name
