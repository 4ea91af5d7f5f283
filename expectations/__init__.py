"""The quality gate on Great Expectations 1.x: rules from pipelines.yml, suites, Data Docs.

- :mod:`expectations.gate` — ``run_quality()``: the public entry point (``elt run``, Airflow,
  Prefect and ``elt validate`` all call it);
- :mod:`expectations.rules` — a rule of pipelines.yml → one GX expectation;
- :mod:`expectations.plan` — which suites run on which tables at which stage (no GX);
- :mod:`expectations.context` / :mod:`expectations.sync` — the GX file context in ``gx/``
  and keeping its files in line with pipelines.yml;
- :mod:`expectations.results` / :mod:`expectations.docs` — check rows and Data Docs;
- :mod:`expectations.cli` — ``elt validate``.

GX is imported only inside the functions that validate (the import takes seconds).
"""
