"""The Great Expectations file context and its two data sources.

The context is generated, not reviewed: it lives under ``.elt/gx/context`` (``ELT_GX_DIR``
overrides it), so a run never changes a tracked file nor leaves an untracked one in the
checkout. What is reviewed in git: ``pipelines.yml`` (the rules, from which the generated
suites are made on every run) and the hand-written suites in ``expectations/suites/``, copied
into the context when it opens. Validation results (``.elt/gx/validations``) and Data Docs
(``.elt/docs/gx``) reach GX through ``${ELT_GX_RESULTS_DIR}`` and ``${ELT_GX_DOCS_DIR}``.

No GX file holds a password: the data sources' connection strings are ``${ELT_GX_RAW_URL}``
and ``${ELT_GX_AUDIT_URL}``, set in this process's environment from the one connection
module just before GX runs. The audit source's URL puts the audit schema on the search
path, so the audit assets are schema-less and the files do not change with ``ELT_DBT_SCHEMA``.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from elt import paths, settings
from expectations.targets import Target

if TYPE_CHECKING:
    from great_expectations.data_context import FileDataContext

WHOLE_TABLE = "whole_table"
BY_LOAD_ID = "by_load_id"
LOAD_ID_COLUMN = "_dlt_load_id"
DOCS_SITE = "elt_docs"
_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")

PROJECT_CONFIG = """\
# Great Expectations (1.x) file context of the ELT platform, generated under .elt/ by every
# run: do not edit. Suites named <pipeline>.<table> are made from the quality rules in
# pipelines.yml; the other suites are copies of expectations/suites/ (reviewed in git).
# Validation results and Data Docs are written under
# .elt/ (ELT_GX_RESULTS_DIR, ELT_GX_DOCS_DIR); connection strings are ${ELT_GX_RAW_URL} and
# ${ELT_GX_AUDIT_URL}, set at run time: no secret is ever written here.
config_version: 4.0
config_variables_file_path: uncommitted/config_variables.yml
plugins_directory: plugins/
analytics_enabled: false
progress_bars:
  globally: false
  metric_calculations: false
stores:
  expectations_store:
    class_name: ExpectationsStore
    store_backend:
      class_name: TupleFilesystemStoreBackend
      base_directory: expectations/
  validation_results_store:
    class_name: ValidationResultsStore
    store_backend:
      class_name: TupleFilesystemStoreBackend
      base_directory: ${ELT_GX_RESULTS_DIR}
  checkpoint_store:
    class_name: CheckpointStore
    store_backend:
      class_name: TupleFilesystemStoreBackend
      suppress_store_backend_id: true
      base_directory: checkpoints/
  validation_definition_store:
    class_name: ValidationDefinitionStore
    store_backend:
      class_name: TupleFilesystemStoreBackend
      base_directory: validation_definitions/
expectations_store_name: expectations_store
validation_results_store_name: validation_results_store
checkpoint_store_name: checkpoint_store
data_docs_sites:
  elt_docs:
    class_name: SiteBuilder
    show_how_to_buttons: false
    store_backend:
      class_name: TupleFilesystemStoreBackend
      base_directory: ${ELT_GX_DOCS_DIR}
    site_index_builder:
      class_name: DefaultSiteIndexBuilder
"""


class ContextError(RuntimeError):
    """The GX project cannot be used as configured."""


def project_dir() -> Path:
    """The folder holding ``gx/``: ``.elt/gx/context`` (``ELT_GX_DIR`` overrides it)."""
    override = os.environ.get("ELT_GX_DIR")
    return Path(override).resolve() if override else paths.state_dir() / "gx" / "context"


def suites_dir() -> Path:
    """The hand-written suites, reviewed in git: ``expectations/suites/<name>.json``."""
    return paths.expectations_dir() / "suites"


def gx_dir() -> Path:
    """The GX project folder itself (``great_expectations.yml`` lives here)."""
    return project_dir() / "gx"


def docs_dir() -> Path:
    """Where Data Docs are built: ``.elt/docs/gx``."""
    return paths.state_dir() / "docs" / "gx"


def results_dir() -> Path:
    """Where GX keeps validation results: ``.elt/gx/validations``."""
    return paths.state_dir() / "gx" / "validations"


def sqlalchemy_url(url: str, *, search_path: str | None = None) -> str:
    """``url`` for SQLAlchemy/psycopg2, optionally with ``search_path`` set at connect."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if search_path is not None:
        if not _SCHEMA_NAME.match(search_path):
            raise ContextError(
                f"ELT_DBT_SCHEMA {search_path!r} is not a plain schema name; use letters,"
                " digits and _"
            )
        options = dict(query).get("options", "")
        query = [(key, value) for key, value in query if key != "options"]
        query.append(("options", f"{options} -csearch_path={search_path}".strip()))
    return urlunsplit(
        ("postgresql+psycopg2", parts.netloc, parts.path, urlencode(query), parts.fragment)
    )


def gx_env(url: str, audit_schema: str) -> dict[str, str]:
    """The variables GX's files refer to (URLs with credentials: never print them)."""
    return {
        "GX_ANALYTICS_ENABLED": "false",
        "ELT_GX_RAW_URL": sqlalchemy_url(url),
        "ELT_GX_AUDIT_URL": sqlalchemy_url(url, search_path=audit_schema),
        "ELT_GX_RESULTS_DIR": str(results_dir()),
        "ELT_GX_DOCS_DIR": str(docs_dir()),
    }


@contextmanager
def locked() -> Iterator[None]:
    """Serialise GX work of concurrent processes (orchestrator tasks) on this machine."""
    lock_file = paths.state_dir() / "gx.lock"
    with lock_file.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def open_context(url: str, audit_schema: str | None = None) -> FileDataContext:
    """The file context, created with our project config on first use; sets GX's variables."""
    os.environ.update(gx_env(url, audit_schema or settings.dbt_schema()))
    config = gx_dir() / "great_expectations.yml"
    config.parent.mkdir(parents=True, exist_ok=True)
    if not config.exists():
        config.write_text(PROJECT_CONFIG)
    install_handwritten_suites()
    # GX logs a warning per rounded decimal (a mean, say), and its import logs ~200 INFO
    # lines when Airflow configured logging first: neither helps a reader.
    logging.getLogger("great_expectations.util").setLevel(logging.ERROR)
    logging.getLogger("great_expectations._docs_decorators").setLevel(logging.WARNING)
    import great_expectations as gx

    return gx.get_context(mode="file", project_root_dir=str(project_dir()))


def install_handwritten_suites() -> None:
    """Copy the hand-written suites into the context's store (only those that changed)."""
    store = gx_dir() / "expectations"
    for source in sorted(suites_dir().rglob("*.json")):
        target = store / source.relative_to(suites_dir())
        text = source.read_text()
        if not target.exists() or target.read_text() != text:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)


def datasource(context: FileDataContext, stage: str) -> Any:
    """The data source of a stage (``raw`` or ``audit``), added on first use."""
    names = {ds.name for ds in context.data_sources.all().values()}
    if stage in names:
        return context.data_sources.get(stage)
    variable = "ELT_GX_RAW_URL" if stage == "raw" else "ELT_GX_AUDIT_URL"
    return context.data_sources.add_postgres(name=stage, connection_string=f"${{{variable}}}")


def batch_definition(context: FileDataContext, target: Target, *, by_load: bool) -> Any:
    """The whole-table (or per ``_dlt_load_id``) batch definition of a table, added if new.

    Adding an asset checks that the table exists, so call this only for existing tables.
    """
    from great_expectations.core.partitioners import PartitionerColumnValue

    source = datasource(context, target.datasource)
    try:
        asset = source.get_asset(target.label)
    except LookupError:
        asset = source.add_table_asset(
            name=target.label, table_name=target.table, schema_name=target.schema
        )
    name = BY_LOAD_ID if by_load else WHOLE_TABLE
    existing = {definition.name: definition for definition in asset.batch_definitions}
    if name in existing:
        return existing[name]
    if not by_load:
        return asset.add_batch_definition_whole_table(name)
    # GX validates only date partitions; a load id is text, so skip that check
    return asset.add_batch_definition(
        name,
        partitioner=PartitionerColumnValue(column_name=LOAD_ID_COLUMN),
        validate_partitioner=False,
    )
