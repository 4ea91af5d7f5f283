"""``pools:`` from pipelines.yml as Airflow pools (``elt airflow sync-pools``).

Each plan step carries its pool (``database``, ``api``, ``file_io``, ``cpu``, ``memory``);
Airflow runs at most ``slots`` tasks of a pool at once across every DAG. Syncing creates
missing pools and sets the slots of existing ones; pools not in the config are left alone
(``default_pool`` and pools other projects use).
"""

from __future__ import annotations

from elt.config import ProjectConfig

DESCRIPTION = "managed by elt (pipelines.yml pools:)"


def wanted_pools(config: ProjectConfig) -> dict[str, int]:
    """Pool name → slots, for every pool in the config."""
    return dict(sorted(config.pools.items()))


def sync_pools(config: ProjectConfig) -> dict[str, int]:
    """Create or update the pools in Airflow's metadata database; returns what was synced."""
    from airflow.models.pool import Pool

    wanted = wanted_pools(config)
    for name, slots in wanted.items():
        Pool.create_or_update_pool(
            name=name, slots=slots, description=DESCRIPTION, include_deferred=False
        )
    return wanted


def current_pools() -> dict[str, int]:
    """The pools in Airflow now (name → slots)."""
    from airflow.models.pool import Pool

    return {pool.pool: pool.slots for pool in Pool.get_pools()}
