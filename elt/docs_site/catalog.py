"""The portal's catalog: one entry per published mart and per raw table, with its checks.

Read from ``elt_meta`` (publish and ingest steps, loads, GX checks, dbt test results), dbt's
manifest (descriptions, lineage, which model a test protects) and ``pipelines.yml`` (owner,
freshness thresholds). Plain dataclasses: the pages render them without a database.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from psycopg2.extensions import cursor as Cursor

if TYPE_CHECKING:
    from elt.config import ProjectConfig
    from elt.config_sources import Freshness

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from elt import runs

SCHEMA = runs.SCHEMA
_DBT_FAILED = ("fail", "error", "runtime error", "warn")


@dataclass
class Outcome:
    """One check's result in one run."""

    run_id: str
    at: datetime
    success: bool
    severity: str  # fail | warn
    observed: str = "-"
    expected: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class CheckHistory:
    """One check (a GX expectation or a dbt test) across the runs that ran it, oldest first."""

    key: str
    kind: str  # gx | dbt
    name: str
    table: str  # the asset it protects: a mart name or raw_<source>.<table>
    column: str | None
    outcomes: list[Outcome] = field(default_factory=list)
    unique_id: str | None = None  # dbt tests
    failures_relation: str | None = None  # dbt store_failures table, when dbt keeps one

    @property
    def latest(self) -> Outcome:
        """The newest outcome."""
        return self.outcomes[-1]

    @property
    def status(self) -> str:
        """``open`` (failing in its latest run), ``resolved`` (failed before, passes now) or
        ``passing`` (never failed in the runs shown)."""
        if not self.latest.success:
            return "open"
        return "resolved" if any(not o.success for o in self.outcomes) else "passing"

    @property
    def last_failure(self) -> Outcome | None:
        """The newest failing outcome."""
        return next((o for o in reversed(self.outcomes) if not o.success), None)

    @property
    def first_failing(self) -> Outcome | None:
        """The first run of the newest streak of failures."""
        first = None
        for outcome in reversed(self.outcomes):
            if outcome.success and first is not None:
                break
            if not outcome.success:
                first = outcome
        return first

    @property
    def resolved_by(self) -> Outcome | None:
        """The first passing run after the newest failure (None while open)."""
        last = self.last_failure
        if last is None:
            return None
        after = self.outcomes[self.outcomes.index(last) + 1 :]
        return after[0] if after else None


@dataclass
class Volume:
    """An asset's size after one run: rows written, of which new (not re-merged)."""

    run_id: str
    at: datetime
    rows: int  # published rows of a mart; rows written by the load of a raw table
    new_rows: int | None = None  # raw tables: growth of the table in this load
    total: int | None = None  # raw tables: rows in the table after the load


@dataclass
class Asset:
    """A published mart or a raw table."""

    kind: str  # mart | raw | model (staging / intermediate)
    name: str  # customers | raw_shop.orders
    owner: str = "-"
    pipeline: str | None = None
    source: str | None = None
    description: str = ""
    warn_after_s: float | None = None
    error_after_s: float | None = None
    last_run_id: str | None = None
    last_at: datetime | None = None
    volumes: list[Volume] = field(default_factory=list)  # oldest first
    checks: list[CheckHistory] = field(default_factory=list)
    upstream: list[str] = field(default_factory=list)
    downstream: list[str] = field(default_factory=list)

    @property
    def open_checks(self) -> list[CheckHistory]:
        """Checks failing in their latest run."""
        return [c for c in self.checks if c.status == "open"]

    @property
    def slug(self) -> str:
        """The file name of the asset's page."""
        return re.sub(r"[^A-Za-z0-9_.-]", "_", self.name)


@dataclass
class Catalog:
    """Every asset and every check the portal shows."""

    marts: list[Asset] = field(default_factory=list)
    raw: list[Asset] = field(default_factory=list)
    models: list[Asset] = field(default_factory=list)  # tested models that are not marts

    @property
    def assets(self) -> list[Asset]:
        """Marts first, then raw tables, then other tested models."""
        return self.marts + self.raw + self.models

    @property
    def checks(self) -> list[CheckHistory]:
        """Every check of every asset."""
        return [check for asset in self.assets for check in asset.checks]


def load_manifest(path: Path | None) -> dict[str, Any]:
    """dbt's manifest as a dict; empty when there is none."""
    if path is None or not path.exists():
        return {}
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def load(
    cur: Cursor,
    run_ids: list[str],
    config: ProjectConfig | None = None,
    manifest: dict[str, Any] | None = None,
) -> Catalog:
    """The catalog of the runs ``run_ids`` (the portal's window of history)."""
    manifest = manifest or {}
    catalog = Catalog(marts=_marts(cur, run_ids), raw=_raw_tables(cur, run_ids))
    by_name = {asset.name: asset for asset in catalog.assets}
    for check in _gx_checks(cur, run_ids) + _dbt_tests(cur, run_ids, manifest):
        if check.table not in by_name:  # a staging/intermediate model: a page of its own
            by_name[check.table] = Asset(kind="model", name=check.table or "(no model)")
            catalog.models.append(by_name[check.table])
        by_name[check.table].checks.append(check)
    _describe(catalog, config, manifest)
    return catalog


def _marts(cur: Cursor, run_ids: list[str]) -> list[Asset]:
    cur.execute(
        "select s.run_id, r.pipeline, s.finished_at, s.detail -> 'tables'"
        f" from {SCHEMA}.steps s join {SCHEMA}.runs r using (run_id)"
        " where s.kind = 'publish' and s.status = 'succeeded' and s.run_id = any(%s)"
        " order by s.finished_at",
        (run_ids,),
    )
    marts: dict[str, Asset] = {}
    for run_id, pipeline, at, tables in cur.fetchall():
        for name, count in (tables or {}).items():
            mart = marts.setdefault(name, Asset(kind="mart", name=name))
            mart.pipeline, mart.last_run_id, mart.last_at = pipeline, run_id, at
            mart.volumes.append(Volume(run_id, at, int(count)))
    return [marts[name] for name in sorted(marts)]


def _raw_tables(cur: Cursor, run_ids: list[str]) -> list[Asset]:
    cur.execute(
        "select l.run_id, l.source, l.table_name, max(l.loaded_at), sum(l.rows),"
        " (s.detail -> 'table_rows' ->> l.table_name)::bigint"
        f" from {SCHEMA}.loads l left join {SCHEMA}.steps s on s.run_id = l.run_id"
        "  and s.kind = 'ingest' and s.step_id = 'ingest_' || l.source"
        " where l.status = 'succeeded' and l.run_id = any(%s)"
        " group by l.run_id, l.source, l.table_name, s.detail order by max(l.loaded_at)",
        (run_ids,),
    )
    tables: dict[str, Asset] = {}
    for run_id, source, table, at, count, total in cur.fetchall():
        name = f"raw_{source}.{table}"
        asset = tables.setdefault(name, Asset(kind="raw", name=name, source=source))
        previous = asset.volumes[-1].total if asset.volumes else None
        new = None if total is None or previous is None else max(0, int(total) - previous)
        asset.volumes.append(Volume(run_id, at, int(count), new, total))
        asset.last_run_id, asset.last_at = run_id, at
    return [tables[name] for name in sorted(tables)]


def _gx_checks(cur: Cursor, run_ids: list[str]) -> list[CheckHistory]:
    cur.execute(
        "select c.run_id, c.checked_at, c.stage, c.suite, c.expectation_name, c.table_name,"
        " c.column_name, c.severity, c.success, c.observed_value, c.unexpected_percent,"
        f" c.details from {SCHEMA}.checks c join {SCHEMA}.runs r using (run_id)"
        " where c.run_id = any(%s) order by r.started_at, c.checked_at, c.check_id",
        (run_ids,),
    )
    checks: dict[tuple[Any, ...], CheckHistory] = {}
    for row in cur.fetchall():
        run_id, at, stage, suite, name, table, column, severity, success = row[:9]
        observed, percent, details = row[9], row[10], dict(row[11] or {})
        key = (stage, suite, name, table, column)
        check = checks.get(key)
        if check is None:
            slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"gx-{stage}-{table}-{name}")[:120]
            check = checks[key] = CheckHistory(slug, "gx", name, table, column)
        outcome = Outcome(
            run_id,
            at,
            bool(success),
            severity,
            observed_text(observed, percent),
            details.pop("expected_text", None) or _text(details.get("expected")),
            details,
        )
        _add(check, outcome)
    return list(checks.values())


def _add(check: CheckHistory, outcome: Outcome) -> None:
    """Keep one outcome per run (raw checks run once per load: the worst one counts)."""
    if check.outcomes and check.outcomes[-1].run_id == outcome.run_id:
        if check.outcomes[-1].success:
            check.outcomes[-1] = outcome
        return
    check.outcomes.append(outcome)


def _dbt_tests(cur: Cursor, run_ids: list[str], manifest: dict[str, Any]) -> list[CheckHistory]:
    nodes = manifest.get("nodes", {})
    cur.execute(
        "select d.run_id, r.started_at, d.unique_id, d.status, d.failures, d.message"
        f" from {SCHEMA}.dbt_results d join {SCHEMA}.runs r using (run_id)"
        " where d.resource_type = 'test' and d.run_id = any(%s) order by r.started_at",
        (run_ids,),
    )
    checks: dict[str, CheckHistory] = {}
    for run_id, at, unique_id, status, failures, message in cur.fetchall():
        check = checks.get(unique_id)
        if check is None:
            node = nodes.get(unique_id, {})
            check = checks[unique_id] = CheckHistory(
                key=re.sub(r"[^A-Za-z0-9_.-]+", "_", f"dbt-{unique_id}")[:120],
                kind="dbt",
                name=node.get("name") or unique_id.split(".")[-2],
                table=_tested_asset(node, manifest),
                column=node.get("column_name"),
                unique_id=unique_id,
                failures_relation=node.get("relation_name"),
            )
        severity = "warn" if status == "warn" else "fail"
        failing = status in _DBT_FAILED
        observed = f"{failures:,} failing row(s)" if failures is not None else status
        details = {"status": status, "message": message}
        _add(check, Outcome(run_id, at, not failing, severity, observed, "0 failing rows", details))
    return list(checks.values())


def _tested_asset(node: dict[str, Any], manifest: dict[str, Any]) -> str:
    """The mart or raw table a dbt test protects ('' when neither)."""
    attached = node.get("attached_node") or next(
        iter(node.get("depends_on", {}).get("nodes", [])), ""
    )
    if attached.startswith("source."):
        source = manifest.get("sources", {}).get(attached, {})
        return f"{source.get('schema', '')}.{source.get('identifier') or source.get('name', '')}"
    return str(manifest.get("nodes", {}).get(attached, {}).get("name", ""))


def observed_text(value: Any, percent: float | None = None) -> str:
    """An observed value from jsonb as short readable text, with its share of rows."""
    text = _text(value) or "-"
    if percent:
        text += f" ({percent:.1f} % of rows)"
    return text


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:,}"
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _describe(catalog: Catalog, config: ProjectConfig | None, manifest: dict[str, Any]) -> None:
    """Owner, description, freshness and lineage from pipelines.yml and dbt's manifest."""
    models = {
        n["name"]: (uid, n)
        for uid, n in manifest.get("nodes", {}).items()
        if n.get("resource_type") == "model"
    }
    children = manifest.get("child_map", {})
    for mart in catalog.marts:
        uid, node = models.get(mart.name, (None, {}))
        mart.description = node.get("description", "")
        mart.upstream = _names(node.get("depends_on", {}).get("nodes", []), manifest)
        mart.downstream = _names(children.get(uid, []), manifest) if uid else []
        pipe = config.pipelines.get(mart.pipeline) if config and mart.pipeline else None
        if pipe is not None:
            mart.owner = pipe.owner
            own = pipe.marts.get(mart.name)
            mart.description = mart.description or (own.description if own else "")
            _thresholds(mart, pipe.mart_freshness(mart.name))
            if pipe.export and mart.name in pipe.export.models:
                mart.downstream.append(f"export:{pipe.name} (Parquet)")
    for model in catalog.models:
        uid, node = models.get(model.name, (None, {}))
        model.description = node.get("description", "")
        model.upstream = _names(node.get("depends_on", {}).get("nodes", []), manifest)
        model.downstream = _names(children.get(uid, []), manifest) if uid else []
    sources = manifest.get("sources", {})
    for table in catalog.raw:
        source = config.sources.get(table.source or "") if config else None
        if config is not None and source is not None:
            table.description = source.description
            _thresholds(table, source.freshness)
            owners = [p.owner for p in config.pipelines.values() if table.source in p.sources]
            table.owner = ", ".join(sorted(set(owners))) or "-"
        table.upstream = [f"source:{table.source} (dlt)"]
        uid = next(
            (
                u
                for u, s in sources.items()
                if f"{s.get('schema')}.{s.get('identifier')}" == table.name
            ),
            None,
        )
        table.downstream = _names(children.get(uid, []), manifest) if uid else []


def _thresholds(asset: Asset, freshness: Freshness | None) -> None:
    if freshness is None:
        return
    asset.warn_after_s = freshness.warn_after.total_seconds()
    if freshness.error_after is not None:
        asset.error_after_s = freshness.error_after.total_seconds()


def _names(unique_ids: list[str], manifest: dict[str, Any]) -> list[str]:
    """Readable names of dbt nodes: models by name, sources as raw_<source>.<table>."""
    names = []
    for uid in unique_ids:
        if uid.startswith("source."):
            source = manifest.get("sources", {}).get(uid, {})
            names.append(f"{source.get('schema')}.{source.get('identifier') or source.get('name')}")
        elif uid.startswith(("model.", "exposure.", "snapshot.", "seed.")):
            node = manifest.get("nodes", {}).get(uid) or manifest.get("exposures", {}).get(uid, {})
            prefix = "exposure:" if uid.startswith("exposure.") else ""
            names.append(prefix + node.get("name", uid.split(".")[-1]))
    return sorted(set(names))
