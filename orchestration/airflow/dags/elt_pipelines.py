"""Airflow DAGs of every pipeline in ``pipelines.yml``: one DAG each, built by the factory.

Thin on purpose: the factory (``orchestration/airflow/factory.py``) reads the config through
``elt.config`` and the dbt graph from the manifest of ``elt airflow parse-manifest``.
A broken ``pipelines.yml`` is this file's one import error, with the problems it lists.
"""

from orchestration.airflow.environment import apply_base_env

apply_base_env()  # Cosmos and dbt keep their files under .elt/ (read when they are imported)

from airflow.sdk import DAG  # noqa: E402  (also keeps the file visible to DAG discovery)

from orchestration.airflow.factory import load_dags  # noqa: E402

dags: dict[str, DAG] = load_dags()
globals().update(dags)
