"""Ingestion: dlt sources built from pipelines.yml and the runner that loads them.

    from ingestion.runner import ingest, IngestResult      # load one source into raw_<source>
    from ingestion.errors import IngestError               # what a failed ingest raises
    from ingestion.sources import build_source             # config → dlt source (no I/O)

Importing this package is cheap; dlt is imported by the modules above.
"""
