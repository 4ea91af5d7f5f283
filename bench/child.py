"""The fresh process one variant runs in: ``python -m bench.child CASE VARIANT PARAMS RESULT``.

It imports only the case's module, calls the variant with the parameters, and writes what
the variant returned (rows, inner timings) as JSON to RESULT.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    """Run one variant; the exit code is 0 only when it finished."""
    case, variant, params_file, result_file = argv
    params = json.loads(Path(params_file).read_text())
    module = importlib.import_module(f"bench.cases.{case}")
    started = time.perf_counter()
    result = module.VARIANTS[variant](params) or {}
    result.setdefault("inner_s", time.perf_counter() - started)
    Path(result_file).write_text(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
