"""A ``type: dlt`` source: any dlt source function found by reference, called with ``args``.

    source: ingestion.custom.events_feed:events_feed      # package.module:function
    args: {base_url: env:EVENTS_URL, token: env:EVENTS_TOKEN, page_size: 50}

``env:`` arguments are resolved here, at build time; those whose names say credential are
scrubbed from error text. A function that takes ``data_interval`` gets the orchestrator's
window. A single ``@dlt.resource`` is accepted too (it becomes a source of its own name).
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from dlt.extract import DltResource, DltSource

from elt.config import DltSourceRef, is_env_ref, resolve_env
from elt.config_secrets import credential_name
from ingestion.sources.common import BuiltSource, DataInterval, as_source, schema_contract


class CustomSourceError(ValueError):
    """The reference of a ``type: dlt`` source cannot be imported or called (says why)."""


def custom_source(
    config: DltSourceRef, *, data_interval: DataInterval | None = None
) -> BuiltSource:
    """The dlt source the reference names, called with the resolved ``args``."""
    factory = resolve_reference(config.source)
    args = {
        key: resolve_env(value) if is_env_ref(value) else value
        for key, value in config.args.items()
    }
    args = {key: value for key, value in args.items() if value is not None}
    if data_interval is not None and "data_interval" in inspect.signature(factory).parameters:
        args["data_interval"] = data_interval
    made = factory(**args)
    if isinstance(made, DltResource):
        made = as_source(config.name, [made], config.contract)
    if not isinstance(made, DltSource):
        raise CustomSourceError(
            f"{config.source} returned {type(made).__name__}, not a dlt source or resource:"
            " decorate it with @dlt.source or @dlt.resource"
        )
    made.schema_contract = schema_contract(config.contract)
    if config.resources:
        unknown = sorted(set(config.resources) - set(made.resources))
        if unknown:
            raise CustomSourceError(
                f"{config.source} has no resource {', '.join(unknown)};"
                f" it has: {', '.join(made.resources)}"
            )
        made = made.with_resources(*config.resources)
    secrets = [str(args[key]) for key in config.args if credential_name(key) and args.get(key)]
    return BuiltSource(source=made, secrets=secrets)


def resolve_reference(reference: str) -> Any:
    """The callable ``package.module:function`` names, or a clear :class:`CustomSourceError`."""
    module_name, _, function = reference.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CustomSourceError(
            f"cannot import {module_name} for source {reference}: {exc}; check the module path"
            " and that its package is installed (uv add ...)"
        ) from None
    factory = getattr(module, function, None)
    if not callable(factory):
        raise CustomSourceError(f"{module_name} has no function {function!r} (source {reference})")
    return factory
