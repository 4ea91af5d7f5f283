"""Bring the GX files in line with pipelines.yml, writing only what changed.

An unchanged rule leaves its file byte for byte as it was (the context under ``.elt/`` is
shared by the runs of a machine): an object is rewritten only when its content differs, and
an expectation that did not change keeps its id.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from expectations import context as gx_context
from expectations import samples
from expectations.plan import SuitePlan
from expectations.rules import to_expectation

if TYPE_CHECKING:
    from great_expectations.data_context import FileDataContext

RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": 20}
GENERATED_BY = "elt"


def _normal(expectation: Any) -> str:
    """An expectation's content without its id, for comparing."""
    config = expectation.configuration.to_json_dict()
    config.pop("id", None)
    config.pop("rendered_content", None)
    return json.dumps(config, sort_keys=True, default=str)


def _get(collection: Any, name: str) -> Any | None:
    """A suite, validation definition or checkpoint by name; None when there is none."""
    from great_expectations.exceptions import DataContextError

    try:
        return collection.get(name)
    except DataContextError:  # what every GX store raises for an unknown name
        return None


def sync_generated_suite(context: FileDataContext, plan: SuitePlan) -> Any:
    """Create or update a generated suite; unchanged expectations keep their ids."""
    import great_expectations as gx

    wanted = [to_expectation(spec) for spec in plan.specs or []]
    meta = {"generated_by": GENERATED_BY, "table": plan.target.label}
    suite = _get(context.suites, plan.name)
    if suite is None:
        suite = gx.ExpectationSuite(name=plan.name, expectations=wanted, meta=meta)
        return context.suites.add(suite)
    current = {_normal(expectation): expectation.id for expectation in suite.expectations}
    for expectation in wanted:  # fresh objects: reuse the id of an unchanged expectation
        expectation.id = current.get(_normal(expectation))
    same_meta = all(suite.meta.get(key) == value for key, value in meta.items())
    if same_meta and [e.id for e in wanted] == [e.id for e in suite.expectations]:
        return suite
    suite.expectations = wanted
    suite.meta.update(meta)
    suite.save()
    return context.suites.get(plan.name)


def sync_validation(context: FileDataContext, plan: SuitePlan, *, by_load: bool) -> Any:
    """The validation definition running ``plan``'s suite on its table's batch."""
    import great_expectations as gx

    batch = gx_context.batch_definition(context, plan.target, by_load=by_load)
    name = f"{plan.name}.{batch.name}"
    existing = _get(context.validation_definitions, name)
    if existing is not None:
        data = existing.data
        if (
            existing.suite.name == plan.name
            and data.name == batch.name
            and data.data_asset.name == plan.target.label
            and data.data_asset.datasource.name == plan.target.datasource
        ):
            return existing
        context.validation_definitions.delete(name)
    suite = context.suites.get(plan.name)
    return context.validation_definitions.add(
        gx.ValidationDefinition(name=name, data=batch, suite=suite)
    )


def sync_checkpoint(
    context: FileDataContext, name: str, validations: list[Any], keys: list[str] | None = None
) -> Any:
    """The checkpoint running ``validations`` (``keys``: the columns GX identifies the
    unexpected rows by, see :mod:`expectations.samples`).

    It has no Data Docs action: GX's action rebuilds the site once per suite, and Data Docs
    are built once per gate run instead (see :mod:`expectations.docs`), 3x faster.
    """
    import great_expectations as gx

    wanted = sorted(validation.name for validation in validations)
    result_format = samples.result_format(RESULT_FORMAT, keys or [])
    existing = _get(context.checkpoints, name)
    if existing is not None:
        names = sorted(validation.name for validation in existing.validation_definitions)
        if names == wanted and existing.result_format == result_format and not existing.actions:
            return existing
        context.checkpoints.delete(name)
    ordered = sorted(validations, key=lambda validation: validation.name)
    return context.checkpoints.add(
        gx.Checkpoint(
            name=name,
            validation_definitions=ordered,
            actions=[],
            result_format=result_format,
        )
    )


def prune_generated(context: FileDataContext, pipeline: str, keep: set[str]) -> list[str]:
    """Delete suites generated for ``pipeline`` whose rules are gone (and their definitions)."""
    removed = []
    for suite in context.suites.all():
        meta = suite.meta or {}
        if meta.get("generated_by") != GENERATED_BY or not suite.name.startswith(f"{pipeline}."):
            continue
        if suite.name in keep:
            continue
        for validation in context.validation_definitions.all():
            if validation.suite.name == suite.name:
                for checkpoint in context.checkpoints.all():
                    if any(v.name == validation.name for v in checkpoint.validation_definitions):
                        context.checkpoints.delete(checkpoint.name)
                context.validation_definitions.delete(validation.name)
        context.suites.delete(suite.name)
        removed.append(suite.name)
    return removed
