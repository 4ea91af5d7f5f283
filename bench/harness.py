"""Run a suite: build its cases, run every variant interleaved (A B A B …), record samples."""

from __future__ import annotations

import dataclasses
import os
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bench import data, external, machine
from bench.measure import VariantFailed, run_variant
from bench.plan import Case, Suite, Variant
from bench.results import finish_case
from bench.setups import BUILDERS, Context


def say(message: str) -> None:
    """Progress on stderr, with the time and the load average."""
    stamp = datetime.now().strftime("%H:%M:%S")
    print(f"[{stamp} load {machine.load_now():.1f}] {message}", file=sys.stderr, flush=True)


def child_env() -> dict[str, str]:
    """The environment of every process the suite starts: tools' homes, the warehouse,
    telemetry off."""
    from elt import paths, settings

    env = {**os.environ, **settings.tool_env()}
    root = str(paths.project_root())
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    return env


def case_env(env: dict[str, str]) -> dict[str, str]:
    """The variants' environment: dbt writes its target folder (manifest, partial parse)
    under the benchmark's home, not into the project that other dbt runs share."""
    return {**env, "DBT_TARGET_PATH": str(data.bench_home() / "dbt" / "target")}


def _sample(case: Case, variant: Variant, env: dict[str, str]) -> dict[str, Any]:
    if variant.before:
        variant.before()
    variant_env = {**env, **variant.env}
    for function in variant.setup:
        run_variant(case.module, function, case.params, variant_env)
    load = machine.load_now()
    measured = run_variant(case.module, variant.function, case.params, variant_env)
    result = dict(measured.result)
    work = result.get("work_s") or measured.wall_s
    rows = result.get("rows")
    sample = {
        "wall_s": measured.wall_s,
        "work_s": work,
        "peak_rss_mib": measured.peak_rss_mib,
        "load_1min": load,
        **{k: v for k, v in result.items() if k not in {"work_s"}},
    }
    if rows:
        sample["rows_per_s"] = rows / work
        sample["rows_per_s_wall"] = rows / measured.wall_s
    return sample


def run_case(case: Case, env: dict[str, str], repeats: int) -> dict[str, Any]:
    """Prepare, warm up, then ``repeats`` rounds (the case's own, if set) of every variant."""
    env = {**case_env(env), **case.env}
    notes = list(case.notes)
    if case.repeats and case.repeats != repeats:
        rounds = "one round" if case.repeats == 1 else f"{case.repeats} rounds"
        notes.append(f"{rounds.capitalize()} of this case here (other cases: {repeats}).")
        repeats = case.repeats
    record: dict[str, Any] = {
        "id": case.id,
        "group": case.group,
        "title": case.title,
        "size": case.size,
        "metric": case.metric,
        "baseline": case.baseline,
        "labels": {v.name: v.label for v in case.variants},
        "targets": [dataclasses.asdict(t) for t in case.targets],
        "notes": notes,
        "repeats": repeats,
        "samples": {v.name: [] for v in case.variants},
    }
    started = time.monotonic()
    try:
        for function, extra in case.prepare:
            say(f"{case.id}: prepare {function}")
            run_variant(case.module, function, {**case.params, **extra}, env)
        for name in case.warmup:
            say(f"{case.id}: warm-up {name}")
            _sample(case, case.variant(name), env)
        for round_number in range(1, repeats + 1):
            for variant in case.variants:
                sample = _sample(case, variant, env)
                record["samples"][variant.name].append(sample)
                say(
                    f"{case.id} [{round_number}/{repeats}] {variant.name}: "
                    f"{sample['wall_s']:.1f} s wall, {sample['work_s']:.1f} s work, "
                    f"{sample['peak_rss_mib']:.0f} MiB, rows {sample.get('rows', '-')}"
                )
    except (VariantFailed, Exception) as exc:
        record["error"] = str(exc)[-3000:]
        say(f"{case.id}: FAILED: {str(exc)[-1500:]}")
    record["duration_s"] = time.monotonic() - started
    return finish_case(record)


def run_suite(
    suite: Suite,
    *,
    only: list[str] | None = None,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run ``suite`` (or only the named case builders of it) and return its result record.

    ``on_progress`` gets the record so far (``finished`` False) after each case builder, so
    a run that is stopped keeps the figures of the cases it finished."""
    data.use_bench_home()
    # a developer's or CI's machine caches bytecode: without it every process recompiles
    # dlt, pandas and dbt (seconds of start-up that users never see)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    from elt import settings

    description = machine.describe()
    say(f"suite {suite.name}: {machine.one_line(description)}")
    from elt import warehouse

    admin = settings.warehouse()
    env = child_env()
    ctx = Context(suite, admin, data.bench_home())
    ctx.cleanup.append(warehouse.stop)  # the benchmark's own server; runs last
    result: dict[str, Any] = {
        "suite": suite.name,
        "command": suite.command,
        "repeats": suite.repeats,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": description,
        "finished": False,
        "cases": [],
    }
    started = time.monotonic()
    try:
        for name in suite.cases:
            if only and name not in only:
                continue
            result["cases"] += _run_builder(name, ctx, env, suite)
            if on_progress:
                _stamp_end(result, started)
                try:
                    on_progress(result)
                except Exception as exc:  # the final write tries again; the run goes on
                    say(f"could not write the results so far: {exc}")
    finally:
        for stop in reversed(ctx.cleanup):
            try:
                stop()
            except Exception as exc:  # cleanup must not hide the results
                say(f"cleanup failed: {exc}")
    _stamp_end(result, started)
    result["finished"] = True
    return result


def _stamp_end(result: dict[str, Any], started: float) -> None:
    result["duration_s"] = time.monotonic() - started
    result["load_average_end"] = list(os.getloadavg())


def _run_builder(name: str, ctx: Context, env: dict[str, str], suite: Suite) -> list[dict]:
    if name in external.SCRIPTS:
        say(f"external script {name}")
        return [external.run_script(name, env)]
    say(f"setting up {name}")
    try:
        cases = BUILDERS[name](ctx)
    except Exception as exc:
        say(f"{name}: setup FAILED: {exc}")
        return [
            {"id": name, "group": name, "error": f"setup failed: {traceback.format_exc()[-3000:]}"}
        ]
    return [run_case(case, env, suite.repeats) for case in cases]
