"""`elt airflow sync-pools` run with exactly the environment the Helm values give the
scheduler's ``sync-pools`` init container: the image's ``ENV``, the ``elt-settings`` ConfigMap
and ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` from the Secret ``airflow-metadata``. A separate
database on the test server stands in for the cluster's Airflow metadata database; the pod's
paths (/app, /var/lib/elt, /opt/airflow) are mapped onto the checkout and a scratch folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

import psycopg2
import pytest

from elt import config as elt_config
from elt import paths
from tests.helpers.k8s_manifests import (
    HELM_DIR,
    K8S_DIR,
    container_env,
    image_env,
    load_yaml,
    yaml_documents,
)
from tests.helpers.process_env import run_captured

pytestmark = pytest.mark.integration

ROOT = paths.project_root()
METADATA_DB = "airflow_helm_metadata"


def _pod_paths(env: dict[str, str], scratch: Path) -> dict[str, str]:
    """The pod's absolute paths mapped onto this machine (the image's venv is ours)."""
    mapping = {
        "/opt/venv/bin:$PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "/var/lib/elt": str(scratch / "var-lib-elt"),
        "/opt/airflow": str(scratch / "opt-airflow"),
        "/app": str(ROOT),
    }
    mapped = {}
    for key, value in env.items():
        for pod_path, here in mapping.items():
            if value.startswith(pod_path):
                value = here + value[len(pod_path) :]
                break
        mapped[key] = value
    return mapped


@pytest.fixture(scope="module")
def scheduler_init_env(pg, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    values = load_yaml((HELM_DIR / "airflow-values.yaml").read_text())
    (container,) = [
        c for c in values["scheduler"]["extraInitContainers"] if c["name"] == "sync-pools"
    ]
    assert container["command"] == ["elt", "airflow", "sync-pools"]
    (config_map,) = yaml_documents(K8S_DIR / "base" / "configmap.yaml")
    metadata_url = pg.create_database(METADATA_DB).replace(
        "postgresql://", "postgresql+psycopg2://"
    )
    env = {
        **image_env(K8S_DIR / "Dockerfile"),
        **container_env(
            container,
            config_maps={config_map["metadata"]["name"]: config_map["data"]},
            secrets={"airflow-metadata": {"connection": metadata_url}},
        ),
    }
    scratch = tmp_path_factory.mktemp("helm-scheduler")
    env = _pod_paths(env, scratch)
    for folder in ("var-lib-elt", "opt-airflow"):
        (scratch / folder).mkdir()
    # what the chart's migrateDatabaseJob does before the scheduler starts
    migrated = run_captured(["airflow", "db", "migrate"], env, cwd=ROOT, timeout=300)
    assert migrated.returncode == 0, migrated.stdout[-3000:]
    return env


def _pools(url: str) -> dict[str, int]:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("select pool, slots from slot_pool")
        return dict(cur.fetchall())


def test_sync_pools_writes_into_the_metadata_database_the_helm_env_names(pg, scheduler_init_env):
    env = scheduler_init_env
    assert "ELT_WAREHOUSE_URL" not in env  # the init container has no warehouse
    before = _pools(pg.url(METADATA_DB))
    assert set(before) == {"default_pool"}

    synced = run_captured(["elt", "airflow", "sync-pools"], env, cwd=ROOT, timeout=180)

    assert synced.returncode == 0, synced.stdout[-3000:]
    wanted = elt_config.load(ROOT / "pipelines.yml").pools
    assert wanted and _pools(pg.url(METADATA_DB)) == {**before, **wanted}
    # no embedded PostgreSQL was started in the pod's ELT_HOME
    elt_home = Path(env["ELT_HOME"])
    assert not (elt_home / "pg").exists() and not (elt_home / "warehouse.json").exists()


def test_sync_pools_into_an_unmigrated_database_says_what_to_do(pg, scheduler_init_env):
    env = {
        **scheduler_init_env,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": pg.create_database("airflow_helm_empty").replace(
            "postgresql://", "postgresql+psycopg2://"
        ),
    }
    failed = run_captured(["elt", "airflow", "sync-pools"], env, cwd=ROOT, timeout=180)

    assert failed.returncode == 1
    assert "could not sync pools into Airflow's metadata database" in failed.stdout
    assert "airflow db migrate" in failed.stdout
    assert pg.password not in failed.stdout
