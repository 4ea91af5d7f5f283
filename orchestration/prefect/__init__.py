"""Prefect: every pipeline in ``pipelines.yml`` as a Prefect flow, with deployments.

The flow walks the same plan as ``elt run`` (``elt.spec.plan``) and calls the same step code
(``elt.steps.StepRunner``); dbt runs through prefect-dbt's ``PrefectDbtRunner``, so each dbt
node gets its own task run. Importing this package does not import Prefect: the modules that
need it import it inside their functions, after :func:`environment.prepare` has pointed
Prefect's home at ``.elt/prefect`` and turned its telemetry off.
"""
