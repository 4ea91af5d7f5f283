"""The core of the OpenLineage 2-0-2 RunEvent JSON schema, for validating emitted events.

openlineage-python ships typed classes generated from the spec but not the spec's JSON
schema, and the tests run offline, so the RunEvent part of the spec (required fields,
formats, the event-type enum, datasets and the base facet rule) is written out here.
"""

from __future__ import annotations

_FACET = {
    "type": "object",
    "properties": {
        "_producer": {"type": "string", "format": "uri"},
        "_schemaURL": {"type": "string", "format": "uri"},
    },
    "required": ["_producer", "_schemaURL"],
    "additionalProperties": True,
}
_FACETS = {"type": "object", "additionalProperties": {"$ref": "#/$defs/BaseFacet"}}
_DATASET = {
    "type": "object",
    "properties": {
        "namespace": {"type": "string", "minLength": 1},
        "name": {"type": "string", "minLength": 1},
        "facets": _FACETS,
        "inputFacets": _FACETS,
        "outputFacets": _FACETS,
    },
    "required": ["namespace", "name"],
}

RUN_EVENT_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$defs": {"BaseFacet": _FACET},
    "type": "object",
    "properties": {
        "eventType": {"enum": ["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"]},
        "eventTime": {"type": "string", "format": "date-time"},
        "producer": {"type": "string", "format": "uri"},
        "schemaURL": {"type": "string", "format": "uri"},
        "run": {
            "type": "object",
            "properties": {"runId": {"type": "string", "format": "uuid"}, "facets": _FACETS},
            "required": ["runId"],
        },
        "job": {
            "type": "object",
            "properties": {
                "namespace": {"type": "string", "minLength": 1},
                "name": {"type": "string", "minLength": 1},
                "facets": _FACETS,
            },
            "required": ["namespace", "name"],
        },
        "inputs": {"type": "array", "items": _DATASET},
        "outputs": {"type": "array", "items": _DATASET},
    },
    "required": ["eventTime", "producer", "schemaURL", "run", "job"],
}


def validation_errors(event: dict) -> list[str]:
    """Every way ``event`` breaks the schema (empty: valid), formats checked too."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(
        RUN_EVENT_SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(event)]
