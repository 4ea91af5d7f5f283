"""Benchmark cases: each module maps variant names to functions run in a fresh process.

A variant takes the case's parameters (JSON) and returns what it measured inside the
process (``rows``, ``work_s`` = time after imports, anything else worth keeping).
Connection URLs come from the environment, never from the parameter files.
"""
