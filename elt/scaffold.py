"""``elt scaffold dbt SOURCE``: dbt staging for a loaded source, from its raw schema.

Writes ``models/staging/<source>/__sources.yml`` and, per raw table, ``stg_<source>__<table>``
(``.sql`` and ``.yml``) in the project's style: CTE-first, lowercase, rename and cast only.
Columns and types come from the warehouse; primary keys and the parent of each child table
(nested lists) from the dlt schema stored beside the data (``_dlt_version``). Keys get
``unique`` + ``not_null``, child rows a ``relationships`` test to their parent, root tables
a freshness on the load time. A file that exists is never overwritten.
"""

from __future__ import annotations

import json
import zlib
from base64 import b64decode
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import cursor

from elt.source_freshness import dbt_config

_COLUMNS = """
    select c.relname, a.attname, format_type(a.atttypid, a.atttypmod)
      from pg_attribute a
      join pg_class c on c.oid = a.attrelid
      join pg_namespace n on n.oid = c.relnamespace
     where n.nspname = %s and c.relkind in ('r', 'p', 'v') and a.attnum > 0
       and not a.attisdropped and c.relname not like '\\_dlt\\_%%'
     order by c.relname, a.attnum
"""
# a dataset holds one dlt schema: the source's name, or a `type: dlt` function's own name
_SCHEMA = "select schema from {} order by schema_name = %s desc, inserted_at desc limit 1"
_RENAMED = {
    "_dlt_load_id": "load_id",
    "_dlt_id": "dlt_id",
    "_dlt_parent_id": "dlt_parent_id",
    "_dlt_root_id": "dlt_root_id",
    "_dlt_list_idx": "list_index",
}
# types a staging model writes more simply than the catalog names them
_CAST = {
    "character varying": "text",
    "timestamp with time zone": "timestamptz",
    "timestamp without time zone": "timestamp",
    "time without time zone": "time",
}
_FRESHNESS = """\
    config:
      loaded_at_field: "to_timestamp(_dlt_load_id::numeric)"
      # the thresholds of pipelines.yml (sources.{source}.freshness): elt/source_freshness.py
      freshness: {freshness}
"""


class ScaffoldError(RuntimeError):
    """Nothing to scaffold from (the message says what to do)."""


@dataclass
class RawTable:
    """One raw table: its columns (name, type), primary key and parent table (child tables)."""

    name: str
    columns: list[tuple[str, str]]
    primary_key: list[str] = field(default_factory=list)
    parent: str | None = None

    def has(self, column: str) -> bool:
        """True when the table has ``column``."""
        return any(name == column for name, _ in self.columns)


@dataclass
class ScaffoldResult:
    """Files written and files kept because they existed (paths)."""

    written: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)


def raw_tables(url: str, source: str) -> list[RawTable]:
    """The tables of ``raw_<source>`` with their columns, keys and parents."""
    dataset = f"raw_{source}"
    conn = psycopg2.connect(url, connect_timeout=10)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(_COLUMNS, (dataset,))
            by_table: dict[str, list[tuple[str, str]]] = {}
            for table, column, sql_type in cur.fetchall():
                by_table.setdefault(table, []).append((column, sql_type))
            hints = _dlt_tables(cur, dataset, source) if by_table else {}
    finally:
        conn.close()
    if not by_table:
        raise ScaffoldError(f"{dataset} has no tables: load the source first (elt ingest {source})")
    tables = []
    for name, columns in sorted(by_table.items()):
        schema = hints.get(name, {})
        keys = [c for c, hint in schema.get("columns", {}).items() if hint.get("primary_key")]
        tables.append(RawTable(name, columns, keys, schema.get("parent")))
    return tables


def _dlt_tables(cur: cursor, dataset: str, source: str) -> dict[str, Any]:
    """dlt's stored schema of the source (tables → hints); empty when there is none."""
    cur.execute(
        "select 1 from information_schema.tables where table_schema = %s"
        " and table_name = '_dlt_version'",
        (dataset,),
    )
    if cur.fetchone() is None:
        return {}
    cur.execute(sql.SQL(_SCHEMA).format(sql.Identifier(dataset, "_dlt_version")), (source,))
    row = cur.fetchone()
    tables: dict[str, Any] = _decode_schema(row[0]).get("tables", {}) if row else {}
    return tables


def _decode_schema(stored: str) -> dict[str, Any]:
    """dlt stores the schema as JSON, or base64 of zlib-compressed JSON."""
    text = stored.strip()
    if not text.startswith("{"):
        text = zlib.decompress(b64decode(text)).decode()
    decoded: dict[str, Any] = json.loads(text)
    return decoded


def scaffold(source: str, url: str, project_dir: Path, *, description: str = "") -> ScaffoldResult:
    """Write the staging files of ``source`` into ``project_dir``; never overwrites."""
    tables = raw_tables(url, source)
    folder = project_dir / "models" / "staging" / source
    files = {folder / "__sources.yml": sources_yml(source, tables, description)}
    for table in tables:
        model = model_name(source, table.name)
        files[folder / f"{model}.sql"] = model_sql(source, table)
        files[folder / f"{model}.yml"] = model_yml(source, table)
    result = ScaffoldResult()
    folder.mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        try:
            with path.open("x") as handle:  # "x": fails if the file exists, atomically
                handle.write(text)
            result.written.append(path)
        except FileExistsError:
            result.kept.append(path)
    return result


def model_name(source: str, table: str) -> str:
    """``stg_<source>__<table>``."""
    return f"stg_{source}__{table}"


def column_alias(table: str, column: str) -> str:
    """The staging name of a raw column: dlt's columns renamed, a SQL keyword (``value``,
    ``name``, ``type``…) prefixed with the entity: ``tags.value`` → ``tag_value``."""
    if column in _RENAMED:
        return _RENAMED[column]
    if column.upper() in _keywords()[0]:
        entity = table.split("__")[-1]
        return f"{entity.removesuffix('s') or entity}_{column}"
    return column


def _quoted(column: str) -> str:
    """A reserved word (``order``) must be quoted to be read as a column."""
    return f'"{column}"' if column.upper() in _keywords()[1] else column


# without sqlfluff: the reserved words a column is most often named after
_COMMON_RESERVED = frozenset({"ORDER", "USER", "GROUP", "TABLE", "CHECK", "LIMIT", "END", "TO"})


@cache
def _keywords() -> tuple[frozenset[str], frozenset[str]]:
    """(every keyword, the reserved ones) of PostgreSQL as sqlfluff, the style's linter,
    knows them; without sqlfluff only common reserved words."""
    try:
        from sqlfluff.core import dialect_selector
    except ImportError:
        return _COMMON_RESERVED, _COMMON_RESERVED
    dialect = dialect_selector("postgres")
    reserved = frozenset(dialect.sets("reserved_keywords"))
    return reserved | frozenset(dialect.sets("unreserved_keywords")), reserved


def _cast_type(column: str, sql_type: str, keys: list[str]) -> str:
    if column in keys or column == "id" or column.endswith("_id"):
        return "text"  # ids as text (the project's convention)
    return _CAST.get(sql_type, sql_type).replace(",", ", ")  # numeric(12, 2), as linted


def model_sql(source: str, table: RawTable) -> str:
    """The staging model: an import CTE, then renames and casts, then ``select * from final``."""
    data = [c for c in table.columns if c[0] not in _RENAMED]
    lines = [
        f"        cast({_quoted(name)} as {_cast_type(name, sql_type, table.primary_key)})"
        f" as {column_alias(table.name, name)}"
        for name, sql_type in data
    ]
    dlt_lines = [
        f"        cast({name} as {'bigint' if name == '_dlt_list_idx' else 'text'})"
        f" as {_RENAMED[name]}"
        for name, _ in table.columns
        if name in _RENAMED
    ]
    if table.has("_dlt_load_id"):
        dlt_lines.append("        {{ load_id_to_timestamp('_dlt_load_id') }} as loaded_at")
    body = ",\n".join(lines)
    if dlt_lines:
        body += (",\n\n" if lines else "") + ",\n".join(dlt_lines)
    return (
        "with\n\nsource as (\n\n"
        f"    select * from {{{{ source('{source}', '{table.name}') }}}}\n\n"
        "),\n\nfinal as (\n\n"
        f"    select\n{body}\n\n    from source\n\n)\n\nselect * from final\n"
    )


def model_yml(source: str, table: RawTable) -> str:
    """The model's properties: a description per column, key and link tests."""
    model = model_name(source, table.name)
    lines = [
        "version: 2",
        "",
        "models:",
        f"  - name: {model}",
        f"    description: Staging of raw_{source}.{table.name}, one row per raw row"
        " (renamed and cast only).",
        "    columns:",
    ]
    for column, _ in table.columns:
        alias = column_alias(table.name, column)
        lines += [f"      - name: {alias}", f'        description: "`{column}` of the raw table."']
        tests = _column_tests(source, table, column)
        if tests:
            lines += ["        data_tests:", *tests]
    if table.has("_dlt_load_id"):
        lines += ["      - name: loaded_at", "        description: When dlt loaded the row."]
    return "\n".join(lines) + "\n"


def _column_tests(source: str, table: RawTable, column: str) -> list[str]:
    is_row_id = column == "_dlt_id" and not table.primary_key
    if column in table.primary_key or is_row_id:
        return ["          - unique", "          - not_null"]
    if column == "_dlt_load_id":
        return ["          - not_null"]
    if column == "_dlt_parent_id" and table.parent:
        return [
            "          - not_null",
            "          - relationships:",
            "              arguments:",
            f"                to: ref('{model_name(source, table.parent)}')",
            "                field: dlt_id",
        ]
    return []


def sources_yml(source: str, tables: list[RawTable], description: str = "") -> str:
    """The source's ``__sources.yml``: every raw table, freshness on the load time."""
    text = description or f"Raw tables of the source '{source}', loaded by dlt (pipelines.yml)."
    lines = [
        "version: 2",
        "",
        "sources:",
        f"  - name: {source}",
        f"    description: {json.dumps(text)}",
        f"    schema: raw_{source}",
        "    loader: dlt",
        _FRESHNESS.format(source=source, freshness=dbt_config(source)).rstrip("\n"),
        "    tables:",
    ]
    for table in tables:
        lines.append(f"      - name: {table.name}")
        if not table.has("_dlt_load_id"):  # child tables carry no load id: their parent's counts
            lines += ["        config:", "          freshness: null"]
        lines.append("        columns:")
        lines += [f"          - name: {column}" for column, _ in table.columns]
    lines += [
        "      - name: _dlt_loads",
        "        description: One row per load dlt completed.",
        "        config:",
        "          loaded_at_field: inserted_at",
    ]
    return "\n".join(lines) + "\n"
