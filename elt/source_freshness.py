"""The freshness thresholds of pipelines.yml's sources, handed to ``dbt source freshness``.

``freshness: {warn_after, error_after}`` of a source is declared once, in ``pipelines.yml``.
The portal colours the source with it, and dbt checks it: :func:`env` puts every source's
thresholds, in dbt's own form, into the variable ``ELT_SOURCE_FRESHNESS`` of the tool
environment (``elt.settings.tool_env``, which ``elt env`` also prints), and a source's
``__sources.yml`` reads its entry::

    config:
      freshness: "{{ fromjson(env_var('ELT_SOURCE_FRESHNESS', '{}')).get('shop') }}"

A source without thresholds gets ``null``: dbt then checks nothing for it.
"""

from __future__ import annotations

import json
import math
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from elt.config import ProjectConfig
    from elt.config_sources import Freshness

ENV = "ELT_SOURCE_FRESHNESS"


def dbt_config(source: str) -> str:
    """The ``freshness:`` value of ``source``'s ``__sources.yml`` (quoted for YAML)."""
    expression = f"fromjson(env_var('{ENV}', '{{}}')).get('{source}')"
    return '"{{ ' + expression + ' }}"'


def dbt_period(duration: timedelta) -> dict[str, Any]:
    """A duration as dbt's ``{count, period}``: whole days or hours when it is one, else
    minutes (dbt has no seconds: a part minute counts as a whole one)."""
    seconds = duration.total_seconds()
    for period, size in (("day", 86400), ("hour", 3600)):
        if seconds and seconds % size == 0:
            return {"count": int(seconds // size), "period": period}
    return {"count": max(1, math.ceil(seconds / 60)), "period": "minute"}


def dbt_freshness(freshness: Freshness) -> dict[str, Any]:
    """One source's thresholds as dbt's ``freshness`` block."""
    block = {"warn_after": dbt_period(freshness.warn_after)}
    if freshness.error_after is not None:
        block["error_after"] = dbt_period(freshness.error_after)
    return block


def thresholds(config: ProjectConfig | None) -> dict[str, dict[str, Any]]:
    """Every source with thresholds: its name -> dbt's ``freshness`` block."""
    if config is None:
        return {}
    return {
        name: dbt_freshness(source.freshness)
        for name, source in sorted(config.sources.items())
        if source.freshness is not None
    }


def env(config: ProjectConfig | None) -> dict[str, str]:
    """``{ELT_SOURCE_FRESHNESS: <json>}`` for the tool environment."""
    return {ENV: json.dumps(thresholds(config), sort_keys=True)}
