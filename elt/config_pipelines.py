"""The ``pipelines:`` section of ``pipelines.yml`` and the whole project model."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from elt import paths
from elt.config_sources import DEFAULT_POOLS, Retries, Source, Strict
from elt.config_values import (
    Duration,
    Invalid,
    Location,
    NotifyUrl,
    Schedule,
    SqlIdentifier,
    StrList,
    TopName,
    did_you_mean,
)

Severity = Literal["fail", "warn"]
_NEEDS_COLUMN = {"not_null", "unique", "range", "accepted_values"}


class DbtProjectSetting(Strict):
    """The top-level ``dbt:`` block: the dbt project every pipeline builds by default."""

    # relative to the folder of pipelines.yml; unset: dbt_project/ of the project root
    project_dir: str | None = None


class DbtSpec(Strict):
    """Which dbt nodes a pipeline builds (and, optionally, from which dbt project)."""

    project_dir: str | None = None  # overrides the top-level dbt.project_dir
    select: StrList = []
    exclude: StrList = []
    threads: int = Field(4, ge=1)
    full_refresh: bool = False


class Rule(Strict):
    """One data quality rule, compiled to dbt tests / GX expectations."""

    type: Literal["not_null", "unique", "range", "accepted_values", "row_count", "sql"]
    table: SqlIdentifier
    column: SqlIdentifier | None = None
    max_null_percentage: float = Field(0, ge=0, le=100)
    max_duplicates: int = Field(0, ge=0)
    min: float | None = None
    max: float | None = None
    values: list[Any] = []
    sql: str | None = None
    expected: Any = None
    severity: Severity | None = None
    name: str | None = None

    @model_validator(mode="after")
    def _check_and_name(self) -> Rule:
        problem = _rule_problem(self)
        if problem:
            raise problem
        if self.name is None:
            parts = [self.type, self.table.replace(".", "_"), self.column]
            self.name = "_".join(part for part in parts if part)
        return self


def _rule_problem(rule: Rule) -> Invalid | None:
    if rule.type in _NEEDS_COLUMN and not rule.column:
        return Invalid(f"rule type {rule.type} needs a column", hint="add column: <name>")
    if rule.type in ("range", "row_count") and rule.min is None and rule.max is None:
        return Invalid(f"rule type {rule.type} needs min or max", hint="add min: and/or max:")
    if rule.type == "accepted_values" and not rule.values:
        return Invalid("rule type accepted_values needs values", hint="add values: [a, b]")
    if rule.type == "sql" and not rule.sql:
        return Invalid(
            "rule type sql needs the query in 'sql'",
            hint="add sql: select count(*) from ... and expected: <value>",
        )
    return None


class Quality(Strict):
    """The quality gate: rules, GX suites, and whether a failed check fails the run."""

    on_failure: Severity = "fail"
    rules: list[Rule] = []
    suites: StrList = []

    @model_validator(mode="before")
    @classmethod
    def _accept_article_switch(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "fail_on_quality_issues" not in data:
            return data
        data = dict(data)
        flag = data.pop("fail_on_quality_issues")
        if not isinstance(flag, bool):
            raise Invalid(
                "fail_on_quality_issues must be true or false", key="fail_on_quality_issues"
            )
        wanted = "fail" if flag else "warn"
        if data.setdefault("on_failure", wanted) != wanted:
            raise Invalid(
                "fail_on_quality_issues contradicts on_failure",
                hint="keep only on_failure: fail | warn",
                key="fail_on_quality_issues",
            )
        return data

    @model_validator(mode="after")
    def _default_severity(self) -> Quality:
        names = [rule.name for rule in self.rules]
        twice = sorted({name for name in names if names.count(name) > 1 and name})
        if twice:
            raise Invalid(
                f"two rules are named {twice[0]}",
                hint="give one of them a distinct name: ...",
                key="rules",
            )
        for rule in self.rules:
            if rule.severity is None:
                rule.severity = self.on_failure
        return self


class Export(Strict):
    """Export of published models as Parquet files."""

    to: Location
    format: Literal["parquet"] = "parquet"
    models: StrList = Field(min_length=1)


class Notify(Strict):
    """Which events send a notification, and where (Apprise URLs)."""

    on: list[Literal["failure", "quality_warning", "success", "limit_exceeded"]] = ["failure"]
    urls: list[NotifyUrl] = []


class Limits(Strict):
    """Duration thresholds; exceeding them raises a limit_exceeded alert."""

    max_duration: Duration | None = None
    max_task_duration: Duration | None = None


class Pipeline(Strict):
    """One scheduled pipeline: ingest sources, build dbt, check, publish, export, notify."""

    name: str = ""
    description: str = ""
    schedule: Schedule = None
    owner: str = "data-team"
    start_date: date = date(2026, 1, 1)
    catchup: bool = False
    max_active_runs: int = Field(1, ge=1)
    tags: StrList = []
    retries: Retries = Retries()
    sources: StrList
    dbt: DbtSpec = DbtSpec()
    quality: Quality = Quality()
    publish: Literal["write_audit_publish", "none"] = "write_audit_publish"
    export: Export | None = None
    notify: Notify = Notify()
    limits: Limits = Limits()
    depends_on: StrList = []
    execution_timeout: Duration | None = None
    # the pool of the pipeline's own steps (dbt build, gate, publish, export), and how many
    # of its slots each takes; ingests use their source's pool and pool_slots
    pool: str | None = None
    pool_slots: int = Field(1, ge=1)


class UnknownPipelineError(KeyError):
    """Asked for a pipeline that is not declared."""

    def __str__(self) -> str:
        return str(self.args[0])


class ProjectConfig(Strict):
    """The whole ``pipelines.yml``."""

    version: int = 1
    dbt: DbtProjectSetting = DbtProjectSetting()
    sources: dict[TopName, Source] = {}
    pipelines: dict[TopName, Pipeline] = {}
    pools: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_POOLS))
    path: Path = Path("pipelines.yml")

    @model_validator(mode="before")
    @classmethod
    def _names_from_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for section in ("sources", "pipelines"):
            items = data.get(section)
            if isinstance(items, dict):
                data[section] = {
                    key: {**value, "name": key} if isinstance(value, dict) else value
                    for key, value in items.items()
                }
        return data

    @field_validator("version")
    @classmethod
    def _supported_version(cls, version: int) -> int:
        if version != 1:
            raise Invalid(f"unsupported version {version}", hint="this elt reads version: 1")
        return version

    @field_validator("pools")
    @classmethod
    def _pools_positive(cls, pools: dict[str, int]) -> dict[str, int]:
        for name, slots in pools.items():
            if slots < 1:
                raise Invalid(f"pool '{name}' needs at least 1 slot", key=name)
        return {**DEFAULT_POOLS, **pools}

    def dbt_project_dir(self, pipe: Pipeline | None = None) -> Path:
        """The dbt project folder of ``pipe`` (or the top-level one), resolved against the
        folder of pipelines.yml."""
        configured = (pipe and pipe.dbt.project_dir) or self.dbt.project_dir
        if configured is None:
            return paths.dbt_project_dir()
        folder = Path(configured)
        return folder if folder.is_absolute() else (self.path.parent.resolve() / folder)

    def pipeline(self, name: str) -> Pipeline:
        """The pipeline called ``name``; KeyError with a suggestion when unknown."""
        if name in self.pipelines:
            return self.pipelines[name]
        hint = did_you_mean(name, self.pipelines) or f"declared: {', '.join(self.pipelines)}"
        raise UnknownPipelineError(f"no pipeline '{name}' in {self.path}; {hint}")
