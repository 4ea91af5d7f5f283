"""The JSON Schema of ``pipelines.yml`` and its reference page, both made from the pydantic
models of :mod:`elt.config`, so neither can drift from what the loader accepts.

    elt schema > pipelines.schema.json          # editors: autocomplete, errors underlined
    elt schema --markdown > docs/pipelines-yml.md

A test fails when the committed files differ from what this module makes.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from pydantic.json_schema import GenerateJsonSchema

from elt.config import ProjectConfig

SCHEMA_FILE = "pipelines.schema.json"
DOCS_FILE = "docs/pipelines-yml.md"
_INTERNAL = {"ProjectConfig": {"path"}, "Pipeline": {"name"}}  # set by the loader, not in YAML
_SOURCE_INTERNAL = {"name"}
# accepted by a validator before the model sees it: declared here so editors accept it too
_EXTRA_KEYS = {
    "Quality": {
        "fail_on_quality_issues": {
            "type": "boolean",
            "description": "The article's switch: true is on_failure: fail, false is warn.",
        }
    }
}

# meanings of keys whose models (elt/config_pipelines.py) carry no attribute docstring yet
_MEANINGS = {
    "ProjectConfig": {
        "version": "Format version of the file; 1.",
        "sources": "Where data comes from; each loads into the schema raw_<name>.",
        "pipelines": "What runs together, when, and what happens after loading.",
        "pools": "Slots per pool (database, api, file_io, cpu, memory and your own); a step "
        "waits for a free slot of its pool.",
        "dbt": "The dbt project every pipeline builds unless it names its own.",
    },
    "DbtProjectSetting": {
        "project_dir": "Folder of the dbt project, relative to pipelines.yml (default: "
        "dbt_project/ of the project).",
    },
    "Pipeline": {
        "description": "Free text, shown in docs.",
        "schedule": "Cron (5 fields) or @hourly, @daily, @weekly, @monthly, @yearly, @once; "
        "none: manual runs only.",
        "owner": "Team or person, shown in the orchestrators.",
        "start_date": "First data interval of the schedule.",
        "catchup": "Run the intervals missed since start_date.",
        "max_active_runs": "Runs of this pipeline at a time.",
        "tags": "Labels in the orchestrators.",
        "retries": "Retries of every step (a source's own retries win).",
        "sources": "Sources to ingest (names under sources:).",
        "dbt": "What dbt builds.",
        "quality": "Checks after dbt: the quality gate.",
        "publish": "write_audit_publish: marts are published only when every check passed; "
        "none: no publish.",
        "export": "Parquet export of published models.",
        "notify": "Notifications.",
        "limits": "Duration thresholds that alert.",
        "depends_on": "Pipelines whose publish triggers this one (Airflow assets, Prefect "
        "deployment triggers, elt run --with-upstream).",
        "execution_timeout": "A step running longer is stopped and not retried.",
        "pool": "Pool of the pipeline's own steps: dbt build, gate, publish, export (default: "
        "database, export: file_io); ingests use their source's pool.",
        "pool_slots": "Slots of the pool each of those steps takes.",
    },
    "DbtSpec": {
        "project_dir": "This pipeline's dbt project (overrides the top-level dbt.project_dir).",
        "select": "dbt selection (e.g. +marts); default: the whole project.",
        "exclude": "dbt exclusion.",
        "threads": "dbt threads.",
        "full_refresh": "Rebuild incremental models from scratch.",
    },
    "Quality": {
        "on_failure": "fail: a failed check stops publish; warn: it alerts only.",
        "rules": "Rules compiled to dbt tests and GX expectations.",
        "suites": "GX suites (expectations/) to run.",
    },
    "Rule": {
        "type": "not_null, unique, range, accepted_values, row_count or sql.",
        "table": "Model or table (schema.table) checked.",
        "column": "Column checked (not_null, unique, range, accepted_values).",
        "max_null_percentage": "not_null: share of NULLs allowed.",
        "max_duplicates": "unique: duplicate values allowed.",
        "min": "range, row_count: lowest value allowed.",
        "max": "range, row_count: highest value allowed.",
        "values": "accepted_values: the values allowed.",
        "sql": "sql: a query returning one value.",
        "expected": "sql: the value the query must return.",
        "severity": "fail or warn (default: quality.on_failure).",
        "name": "Name of the check (default: type_table_column).",
    },
    "Export": {
        "to": "Folder or bucket URL (s3://, gs://, az://) or env:NAME.",
        "format": "File format.",
        "models": "Published models to export.",
    },
    "Notify": {
        "on": "Events that notify.",
        "urls": "Apprise URLs (json://, slack://, mailto://…); with a secret: env:NAME.",
    },
    "Limits": {
        "max_duration": "A run longer than this alerts (limit_exceeded).",
        "max_task_duration": "A step longer than this alerts.",
    },
}

EXAMPLES: dict[str, str] = {
    "SqlDatabaseSource": """\
shop:
  type: sql_database
  credentials: env:SHOP_DB_URL
  schema: public
  tables:
    orders: {primary_key: id, cursor: ordered_at, lookback: 1h}
    customers: {primary_key: id}
""",
    "RestApiSource": """\
events:
  type: rest_api
  base_url: env:EVENTS_API_URL
  auth: {type: bearer, scheme: token, token: env:EVENTS_API_TOKEN}
  headers: {Accept: application/json}
  paginator: {type: header_link}
  resources:
    events: {path: events, primary_key: id, params: {per_page: 100}}
    comments: {path: "events/{id}/comments", parent: events, primary_key: id}
""",
    "RestAuth": """\
# one of:
auth: {type: bearer, token: env:API_TOKEN}                      # Authorization: Bearer …
auth: {type: bearer, scheme: token, token: env:API_TOKEN}       # Authorization: token …
auth: {type: api_key, name: X-API-Key, api_key: env:API_KEY}    # header (default)
auth: {type: api_key, name: key, location: query, api_key: env:API_KEY}
auth: {type: api_key, name: sid, location: cookie, api_key: env:API_KEY}
auth: {type: http_basic, username: reader, password: env:API_PASSWORD}
auth:
  type: oauth2_client_credentials
  token_url: https://auth.example.com/oauth/token
  client_id: env:API_CLIENT_ID
  client_secret: env:API_CLIENT_SECRET
  scopes: [read]
""",
    "Paginator": """\
paginator: {type: page_number, page_param: page, total_path: total_pages}
paginator: {type: offset, limit: 100}
paginator: {type: cursor, cursor_path: meta.next, cursor_param: after}
paginator: {type: header_link}
paginator: {type: json_link, next_url_path: links.next}
""",
    "RestIncremental": """\
incremental: {cursor_path: updated_at, param: since, initial_value: "2026-01-01", lookback: 1h}
""",
    "FilesystemSource": """\
landing:
  type: filesystem
  bucket_url: env:LANDING_URL
  files:
    supplies: {glob: "supplies/*.csv", format: csv, primary_key: id}
    logs: {glob: "logs/*.jsonl", format: jsonl}
""",
    "DltSourceRef": """\
feed:
  type: dlt
  source: ingestion.custom.events_feed:events_feed
  args: {base_url: env:EVENTS_URL, token: env:EVENTS_TOKEN, page_size: 50}
""",
    "Pipeline": """\
daily:
  schedule: "0 6 * * *"
  sources: [shop, events]
  retries: {count: 2, delay: 5m}
  dbt: {select: "+marts"}
  quality:
    rules:
      - {type: not_null, table: orders, column: customer_id, max_null_percentage: 1}
  notify: {on: [failure], urls: [env:ALERT_URL]}
""",
}


class _Generator(GenerateJsonSchema):
    """pydantic's generator, writing duration defaults as pipelines.yml does (``5m``)."""

    def encode_default(self, dft: Any) -> Any:
        """Durations as ``1h30m``; everything else as pydantic encodes it."""
        if isinstance(dft, timedelta):
            return format_duration(dft)
        return super().encode_default(dft)


def format_duration(value: timedelta) -> str:
    """``timedelta(hours=1, minutes=30)`` → ``1h30m`` (``0s`` for zero)."""
    seconds = int(value.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``pipelines.yml``."""
    schema = ProjectConfig.model_json_schema(by_alias=True, schema_generator=_Generator)
    _drop_internal(schema, "ProjectConfig")
    for name, model in schema["$defs"].items():
        if name.endswith("Source") or name == "DltSourceRef":
            for key in _SOURCE_INTERNAL:
                model["properties"].pop(key, None)
        _drop_internal(model, name)
        model["properties"].update(_EXTRA_KEYS.get(name, {}))
        _describe(model, name)
    _describe(schema, "ProjectConfig")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "pipelines.schema.json",
        **schema,
    }


def _describe(model: dict[str, Any], name: str) -> None:
    for key, meaning in _MEANINGS.get(name, {}).items():
        prop = model["properties"].get(key)
        if prop is not None and not prop.get("description"):
            prop["description"] = meaning


def _drop_internal(model: dict[str, Any], name: str) -> None:
    for key in _INTERNAL.get(name, ()):
        model["properties"].pop(key, None)


def schema_text() -> str:
    """The JSON Schema as the committed file holds it."""
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


def generated_files() -> dict[str, str]:
    """Path (relative to the project root) → content of every generated file."""
    return {SCHEMA_FILE: schema_text(), DOCS_FILE: markdown()}


# --- the reference page ------------------------------------------------------------------

_ORDER = [
    "ProjectConfig",
    "DbtProjectSetting",
    "SqlDatabaseSource",
    "SqlTable",
    "RestApiSource",
    "RestAuth",
    "Paginator",
    "RestResource",
    "RestIncremental",
    "FilesystemSource",
    "FileSet",
    "DltSourceRef",
    "Retries",
    "Pipeline",
    "DbtSpec",
    "Quality",
    "Rule",
    "Export",
    "Notify",
    "Limits",
]
_WHERE = {
    "ProjectConfig": "the file",
    "DbtProjectSetting": "the top-level `dbt`",
    "SqlDatabaseSource": "`sources.<name>` with `type: sql_database`",
    "SqlTable": "`sources.<name>.tables.<table>`",
    "RestApiSource": "`sources.<name>` with `type: rest_api`",
    "RestAuth": "`sources.<name>.auth`",
    "Paginator": "`sources.<name>.paginator`, `…resources.<table>.paginator`",
    "RestResource": "`sources.<name>.resources.<table>`",
    "RestIncremental": "`sources.<name>.resources.<table>.incremental`",
    "FilesystemSource": "`sources.<name>` with `type: filesystem`",
    "FileSet": "`sources.<name>.files.<table>`",
    "DltSourceRef": "`sources.<name>` with `type: dlt`",
    "Retries": "`retries` of a source or a pipeline",
    "Pipeline": "`pipelines.<name>`",
    "DbtSpec": "`pipelines.<name>.dbt`",
    "Quality": "`pipelines.<name>.quality`",
    "Rule": "`pipelines.<name>.quality.rules[]`",
    "Export": "`pipelines.<name>.export`",
    "Notify": "`pipelines.<name>.notify`",
    "Limits": "`pipelines.<name>.limits`",
}


def markdown() -> str:
    """The reference page ``docs/pipelines-yml.md``."""
    schema = json_schema()
    models = {"ProjectConfig": schema, **schema["$defs"]}
    missing = sorted(set(models) - set(_ORDER))
    if missing:  # a new model must get its place on the page
        raise ValueError(f"add {', '.join(missing)} to elt.schema_docs._ORDER and _WHERE")
    lines = [
        "# pipelines.yml reference",
        "",
        "<!-- generated by `elt schema --markdown` from the pydantic models in elt/config*.py;"
        " do not edit -->",
        "",
        "Every key `pipelines.yml` accepts, its type, default and meaning. Unknown keys are "
        "errors. Where a credential can appear it must be an `env:NAME` reference (a literal is "
        "refused, see [security.md](security.md)). Editors that read the JSON Schema "
        f"(`{SCHEMA_FILE}`, made by `elt schema`) complete keys and underline errors: the first "
        "line of `pipelines.yml` points them to it.",
        "",
        "Durations are written `90s`, `5m`, `1h`, `2h30m`, `3d` or a number of seconds; a key "
        "taking a list also takes a single value.",
        "",
        "Contents: " + ", ".join(f"[{_title(name)}](#{_anchor(name)})" for name in _ORDER),
        "",
    ]
    for name in _ORDER:
        lines += _section(name, models[name])
    return "\n".join(lines).rstrip() + "\n"


def _title(name: str) -> str:
    return "pipelines.yml" if name == "ProjectConfig" else name


def _anchor(name: str) -> str:
    return _title(name).lower().replace(".", "")


def _section(name: str, model: dict[str, Any]) -> list[str]:
    lines = [f"## {_title(name)}", "", f"Where: {_WHERE[name]}.", ""]
    description = model.get("description", "").strip()
    if description and name != "ProjectConfig":
        lines += [" ".join(description.split()), ""]
    required = set(model.get("required", []))
    lines += ["| key | type | default | meaning |", "|---|---|---|---|"]
    for key, prop in model["properties"].items():
        default = "required" if key in required else _default(prop)
        meaning = " ".join(prop.get("description", "").split())
        lines.append(f"| `{key}` | {_type(prop)} | {default} | {_cell(meaning)} |")
    lines.append("")
    if name in EXAMPLES:
        lines += ["```yaml", EXAMPLES[name].rstrip(), "```", ""]
    return lines


def _default(prop: dict[str, Any]) -> str:
    if "default" not in prop:
        return ""
    value = prop["default"]
    if value is None or value in ([], {}, ""):
        return "—"
    return f"`{json.dumps(value) if not isinstance(value, str) else value}`"


def _type(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        target = prop["$ref"].rsplit("/", 1)[-1]
        return f"[{target}](#{_anchor(target)})"
    if "enum" in prop:
        return " \\| ".join(f"`{value}`" for value in prop["enum"])
    if "const" in prop:
        return f"`{prop['const']}`"
    alternatives = prop.get("anyOf") or prop.get("oneOf")
    if alternatives:
        kinds = [_type(alt) for alt in alternatives if alt.get("type") != "null"]
        return "duration" if "duration" in kinds else " or ".join(dict.fromkeys(kinds))
    kind = prop.get("type")
    if kind == "array":
        return f"list of {_type(prop.get('items', {}))}"
    if kind == "object":
        inner = prop.get("additionalProperties")
        return f"mapping of name → {_type(inner)}" if isinstance(inner, dict) else "mapping"
    if kind == "string" and str(prop.get("pattern", "")).startswith("^env:"):
        return "`env:NAME`"
    if kind == "string" and prop.get("pattern", "").startswith("^(\\d+d)"):
        return "duration"
    return {"string": "text", "integer": "integer", "number": "number", "boolean": "boolean"}.get(
        str(kind), "any"
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|")
