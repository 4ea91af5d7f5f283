"""``pools:`` from pipelines.yml as Prefect concurrency limits.

Each plan step carries its pool as a task tag; Prefect limits task runs per tag with the
global concurrency limit named ``tag:<tag>``. Syncing creates or updates one such limit per
pool, so at most ``slots`` steps of a pool run at once across every flow run.
"""

from __future__ import annotations

from elt.config import ProjectConfig

TAG_PREFIX = "tag:"


def limit_name(pool: str) -> str:
    """The Prefect global concurrency limit that governs tasks tagged ``pool``."""
    return f"{TAG_PREFIX}{pool}"


def wanted_limits(config: ProjectConfig) -> dict[str, int]:
    """Limit name → slots, for every pool in the config."""
    return {limit_name(pool): slots for pool, slots in sorted(config.pools.items())}


def sync_limits(config: ProjectConfig) -> dict[str, int]:
    """Create or update the limits on the Prefect server (``PREFECT_API_URL``).

    Limits of pools that left the config are kept (they may serve other projects).
    Returns what was synced.
    """
    from prefect.client.orchestration import get_client

    wanted = wanted_limits(config)
    with get_client(sync_client=True) as client:
        for name, slots in wanted.items():
            client.upsert_global_concurrency_limit_by_name(name, slots)
    return wanted


def current_limits() -> dict[str, int]:
    """The tag limits on the server now (name → slots)."""
    from prefect.client.orchestration import get_client

    found: dict[str, int] = {}
    with get_client(sync_client=True) as client:
        offset = 0
        while True:  # bounded by the number of limits on the server
            page = client.read_global_concurrency_limits(limit=100, offset=offset)
            found.update({gcl.name: gcl.limit for gcl in page if gcl.name.startswith(TAG_PREFIX)})
            if len(page) < 100:
                return found
            offset += 100
