"""The core of the OpenLineage 2-0-2 RunEvent JSON schema, for validating emitted events.

No installable package ships the spec's JSON schema (checked 2026-12-04): the wheels of
openlineage-python 1.54.0 (and its 1.39.0 sdist) carry typed classes generated from it but no
``OpenLineage.json``; openlineage-integration-common 1.54.0 and
apache-airflow-providers-openlineage 2.20.3 ship only facet schemas (dbt, BigQuery, GX,
Airflow facets) that ``$ref`` the spec by URL (``https://openlineage.io/spec/2-0-2/
OpenLineage.json``), which the offline tests cannot fetch. So the RunEvent part of the spec
(required fields, formats, the event-type enum, datasets and the base facet rule) is written
out here.
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
