"""A team's own dlt sources, referenced from pipelines.yml as ``type: dlt`` sources
(``source: ingestion.custom.<module>:<function>``)."""
