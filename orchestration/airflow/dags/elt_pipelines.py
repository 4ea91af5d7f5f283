"""Airflow DAGs of every pipeline in ``pipelines.yml``: one DAG each, built by the factory.

Thin on purpose: the factory (``orchestration/airflow/factory.py``) reads the config through
``elt.config`` and the dbt graph from the manifest of ``elt airflow parse-manifest``.
A broken ``pipelines.yml`` is this file's one import error, with the problems it lists.
"""

from orchestration.airflow.environment import apply_base_env

apply_base_env()  # Cosmos and dbt keep their files under .elt/ (read when they are imported)

# Named here, the Airflow modules the factory uses are imported once by the DAG processor
# before it forks each parse ([dag_processor] parsing_pre_import_modules), not per parse.
from airflow.providers.standard.operators.python import PythonOperator  # noqa: E402, F401
from airflow.sdk import DAG, BaseOperator  # noqa: E402, F401  (DAG: keeps the file discoverable)

from orchestration.airflow.factory import load_dags  # noqa: E402

dags: dict[str, DAG] = load_dags()
globals().update(dags)
