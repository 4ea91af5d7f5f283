"""Airflow orchestration: one DAG per pipeline in ``pipelines.yml``, dbt rendered by Cosmos.

    factory.build_dags()        → {dag_id: DAG}; the thin entry file is ``dags/elt_pipelines.py``
    manifest.parse_manifest()   → the dbt manifest Cosmos renders from (DAG parsing never runs dbt)
    local.up() / local.down()   → a local Airflow (api-server, scheduler, dag-processor)

Nothing outside this folder imports Airflow; the task bodies call ``elt.steps.StepRunner``,
the same code ``elt run`` runs.
"""
