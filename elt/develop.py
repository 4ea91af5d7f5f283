"""``dbt build`` in development and in CI: a schema of one's own, deferring to production.

    elt dev [--modified]   → dbt build into dev_<user>, --defer --state <production state>
    elt dev clean          → drop dev_<user> and its suffixed schemas
    elt ci                 → state:modified+ into ci_<branch>, summary, schemas dropped

The production state is the manifest of the project's last published run (``elt.state``):
nodes not built here are read where production has them (published marts from the
published schema, everything else from the audit schema), so a developer builds only what
they changed. The audit and published schemas are never written: the target schema is the
developer's, and a name that is, or extends, one of them is refused.
"""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from psycopg2 import sql

from elt import dbt, runs, settings, state
from elt.config import Pipeline, ProjectConfig
from elt.project import DbtProject

_NOT_IDENTIFIER = re.compile(r"[^a-z0-9_]+")
_MAX_SCHEMA = 50  # PostgreSQL allows 63 bytes; dbt appends _staging, _seeds … per folder


class DevError(RuntimeError):
    """The development build cannot start; the message says why and what to do."""


@dataclass
class DevBuild:
    """What one development (or CI) build did."""

    schema: str
    state_run: str | None  # the published run deferred to; None: built without defer
    outcome: dbt.DbtOutcome
    selected: list[str] = field(default_factory=list)  # state:modified+ when asked for


def schema_name(prefix: str, name: str) -> str:
    """``<prefix>_<name>`` as a safe lowercase identifier (``dev_anna``, ``ci_feature_x``)."""
    cleaned = _NOT_IDENTIFIER.sub("_", name.lower()).strip("_") or "unknown"
    return f"{prefix}_{cleaned}"[:_MAX_SCHEMA].rstrip("_")


def dev_schema() -> str:
    """The developer's schema: ``ELT_DEV_SCHEMA``, else ``dev_<ELT_DEV_USER or $USER>``."""
    explicit = os.environ.get("ELT_DEV_SCHEMA")
    if explicit:
        return explicit
    user = os.environ.get("ELT_DEV_USER") or os.environ.get("USER") or getpass.getuser()
    return schema_name("dev", user)


def check_schema(schema: str) -> None:
    """Refuse a target schema that is (or extends) the audit or the published schema."""
    for protected in (settings.dbt_schema(), settings.published_schema()):
        if schema == protected or schema.startswith(f"{protected}_"):
            raise DevError(
                f"schema {schema!r} belongs to the pipelines ({protected!r} is where they"
                " build or publish): set ELT_DEV_SCHEMA to a schema of your own"
            )


@contextmanager
def target_schema(schema: str) -> Iterator[None]:
    """dbt builds into ``schema`` (the generated profile reads ``ELT_DBT_SCHEMA``)."""
    check_schema(schema)
    saved = os.environ.get("ELT_DBT_SCHEMA")
    os.environ["ELT_DBT_SCHEMA"] = schema
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("ELT_DBT_SCHEMA", None)
        else:
            os.environ["ELT_DBT_SCHEMA"] = saved


def work_dir(project: DbtProject, schema: str) -> Path:
    """Where a dev/CI build of ``project`` into ``schema`` keeps its state and artifacts."""
    return project.home() / schema


def build(
    project: DbtProject,
    schema: str,
    *,
    url: str | None = None,
    modified: bool = False,
    select: Sequence[str] = (),
    exclude: Sequence[str] = (),
    on_node: Callable[[str, str], None] | None = None,
) -> DevBuild:
    """``dbt build`` into ``schema``, deferring to the production state when there is one;
    ``modified`` builds ``state:modified+`` only (within ``select`` when given)."""
    url = url or settings.warehouse_url()
    check_schema(schema)  # before anything is fetched or built
    work = work_dir(project, schema)
    state_dir = work / "state"
    run_id = state.fetch(url, project, state_dir)
    if run_id is None and modified:
        raise DevError(
            f"no published run of dbt project {project.name!r} to compare with: run its"
            " pipeline once (elt run), or build without --modified"
        )
    chosen = list(dbt.selection_args(_selection(select, modified), exclude))
    state_args = ["--state", str(state_dir)] if run_id is not None else []
    with target_schema(schema):
        selected = _list(project, [*chosen, *state_args], work) if modified else []
        defer = ["--defer", "--favor-state", *state_args] if run_id is not None else []
        outcome = dbt.invoke(
            "build",
            [*chosen, *defer],
            project=project,
            target_path=work / "target",
            quiet=True,
            on_node=on_node,
        )
    return DevBuild(schema=schema, state_run=run_id, outcome=outcome, selected=selected)


def _selection(select: Sequence[str], modified: bool) -> list[str]:
    if not modified:
        return list(select)
    if not select:
        return ["state:modified+"]
    # intersection: what changed (and its children) within what was asked for
    return [f"state:modified+,{item}" for item in select]


def _list(project: DbtProject, args: list[str], work: Path) -> list[str]:
    """Names of the nodes ``args`` select (for the summary)."""
    outcome = dbt.invoke(
        "ls",
        [*args, "--output", "name", "--log-level", "none", "--resource-type", "model"],
        project=project,
        target_path=work / "target",
    )
    return sorted(outcome.listed or [])


def drop_schemas(schema: str, url: str | None = None) -> list[str]:
    """Drop ``schema`` and every ``<schema>_<suffix>`` dbt made beside it; returns them."""
    check_schema(schema)
    url = url or settings.warehouse_url()
    with runs.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            "select nspname from pg_namespace where nspname = %s or nspname like %s"
            " order by nspname",
            (schema, schema.replace("_", r"\_") + r"\_%"),
        )
        found = [row[0] for row in cur.fetchall()]
        for name in found:
            cur.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(name)))
    return found


def row_counts(url: str, schema: str, tables: Sequence[str]) -> dict[str, int | None]:
    """Rows of each table in ``schema`` (None when it does not exist there)."""
    counts: dict[str, int | None] = {}
    with runs.connect(url) as conn, conn.cursor() as cur:
        for table in tables:
            cur.execute("select to_regclass(%s) is not null", (f'"{schema}"."{table}"',))
            if not state.one(cur):
                counts[table] = None
                continue
            cur.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(schema, table)))
            counts[table] = int(state.one(cur))
    return counts


def ci_checks(
    config: ProjectConfig, pipe: Pipeline, schema: str, built: set[str], url: str
) -> list[str]:
    """Run ``pipe``'s quality rules on the marts CI built into ``schema``; returns the
    failed ones (``fail`` severity first). Rules on marts CI did not build stay with
    production; the check rows are removed again (CI is not a run) and the GX files go to a
    throwaway folder, so the checkout's ``expectations/`` is untouched."""
    import tempfile
    import uuid

    from expectations.gate import run_quality

    rules = [rule for rule in pipe.quality.rules if "." not in rule.table and rule.table in built]
    if not rules:
        return []
    quality = pipe.quality.model_copy(update={"rules": rules, "suites": []})
    ci_pipe = pipe.model_copy(update={"name": f"ci_{pipe.name}", "quality": quality})
    run_id = f"ci-{schema}-{uuid.uuid4().hex[:12]}"
    saved = os.environ.get("ELT_GX_DIR")
    with tempfile.TemporaryDirectory(prefix="elt-ci-gx-") as gx_dir, target_schema(schema):
        os.environ["ELT_GX_DIR"] = gx_dir
        try:
            outcome = run_quality(config, ci_pipe, run_id=run_id, url=url, stage="audit")
        finally:
            if saved is None:
                os.environ.pop("ELT_GX_DIR", None)
            else:
                os.environ["ELT_GX_DIR"] = saved
            with runs.connect(url) as conn, conn.cursor() as cur:
                cur.execute("select to_regclass(%s) is not null", (f"{runs.SCHEMA}.checks",))
                if state.one(cur):
                    cur.execute(f"delete from {runs.SCHEMA}.checks where run_id = %s", (run_id,))
    failed = [f"{line} [fail]" for line in outcome.describe(outcome.blocking)]
    return failed + [f"{line} [warn]" for line in outcome.describe(outcome.warnings)]
