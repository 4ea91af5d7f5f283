"""Benchmarks: one harness (``python -m bench``), cases run side by side in fresh processes.

    make bench-quick     # every case at a small scale, < 5 minutes
    make bench-ingest    # database ingestion at two sizes (≥ 1M order items)
    make bench           # every case, full scale, plus the other helpers' bench scripts

Results go to ``bench/results/<date>.json`` and the tables to ``BENCHMARKS.md``.
"""
