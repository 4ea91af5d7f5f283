"""What a benchmark run is made of: suites, cases, their variants and targets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

Metric = Literal["throughput", "time"]


@dataclass(frozen=True)
class Suite:
    """A named set of cases and the scales they run at."""

    name: str
    command: str
    cases: tuple[str, ...]
    repeats: int = 3
    base_years: float = 1.0  # jafgen years behind the ingestion tables
    ingest_factors: tuple[int, ...] = (10,)  # copies of the base items, one case per factor
    file_factors: tuple[int, ...] = (1,)  # copies of the base items as CSV files, one case each
    tweet_factor: int = 1
    incremental_factor: int = 1
    dbt_years: float = 0.1
    e2e_years: float = 0.1
    e2e_scales: tuple[int, ...] = (1, 10)
    e2e_repeats: int | None = None  # rounds of the end-to-end case (default: ``repeats``)
    publish_scales: tuple[int, ...] = ()  # demo multiples the publish case compares


@dataclass
class Variant:
    """One way of doing the case's job: a function of ``bench.cases.<module>``."""

    name: str
    label: str
    function: str
    env: dict[str, str] = field(default_factory=dict)
    before: Callable[[], None] | None = None  # run in the harness before each run (untimed)
    setup: list[str] = field(default_factory=list)  # case functions run before it (untimed)


TargetMetric = Literal[
    "rows_per_s", "work_s", "wall_s", "peak_rss_mib", "run_peak_rss_mib", "run_publish_share"
]


@dataclass(frozen=True)
class Target:
    """A goal from the issues: ``variant`` against ``against`` on ``on``, ``op`` ``bound``.

    With ``against`` None the bound is on the variant's own median (seconds, MiB, a share),
    not on a ratio."""

    text: str
    variant: str
    against: str | None
    on: TargetMetric
    op: Literal[">=", "<="]
    bound: float

    def met(self, value: float | None) -> bool | None:
        """Whether a measured ratio meets the target (None: not measured)."""
        if value is None:
            return None
        return value >= self.bound if self.op == ">=" else value <= self.bound


@dataclass
class Case:
    """A job measured several ways in one run, interleaved, against a baseline variant."""

    id: str
    group: str
    title: str
    module: str
    variants: list[Variant]
    baseline: str
    params: dict[str, Any] = field(default_factory=dict)
    metric: Metric = "time"
    size: str = ""
    prepare: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # once, first
    warmup: list[str] = field(default_factory=list)  # variants run once, not recorded
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    repeats: int | None = None  # rounds of this case when not the suite's

    def variant(self, name: str) -> Variant:
        """The variant called ``name``."""
        return next(v for v in self.variants if v.name == name)
