"""Benchmark: scheduled runs of a pipeline vs ``elt run`` of it (issue 17).

    .venv/bin/python bench/scheduled.py [--repeats 2] [--years 0.1] [--write]

Setup (not timed), in its own state folder (``$BENCH_HOME``, default ``.elt/bench/scheduled``)
with its own embedded warehouse: the demo data (``--years`` of jafgen), ``jaffle_daily`` alone
in a bench ``pipelines.yml`` (no schedule of its own: every run is started on purpose), one
first ``elt run`` (the full load, so every measured run does the same incremental work), then
``elt airflow up --executor celery`` (api-server, scheduler, dag-processor, Redis, two Celery
workers, each in its own empty folder) and a Prefect server, ``elt prefect deploy`` and one
``elt prefect worker --name bench`` (its flow runs in an empty folder of its own).

Then, interleaved, a discarded warm-up round and ``--repeats`` rounds of:

* ``elt run``: ``elt run jaffle_daily`` in a fresh process;
* ``airflow``: a DAG run created through Airflow's REST API, which the scheduler queues and
  the Celery workers execute (one process per task);
* ``prefect``: a flow run created from the deployment, which the worker picks up (it polls
  the server every ``PREFECT_WORKER_QUERY_SECONDS``, 10 s by default) and runs in a new process.

Wall time runs from the request until the run's final state is seen (polled every 0.5 s);
the orchestrator's own start → end time of the run is shown beside it. Peak RSS is the
largest sum over every process the variant needs: ``elt run``'s tree, or all of Airflow's
services (Redis and the workers included), or the Prefect server and the worker with its
flow-run process. The services' resident memory just before the run is shown too (they run
all day). The warehouse's PostgreSQL is counted for no variant.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.measure import MIB, run_command, tree_rss  # noqa: E402
from bench.results import verdict, write_verdicts  # noqa: E402
from bench.stats import fmt_ratio, fmt_spread, markdown_table, ratio, summarize  # noqa: E402

PIPELINE = "jaffle_daily"
WORKER = "bench"
RUN_TIMEOUT_S = 1800
START_TIMEOUT_S = 600
POLL_S = 0.5
TARGET = 1.5  # scheduled run time at most 1.5× `elt run`
BLOCK = "scheduled"  # its own marked block in BENCHMARKS.md
VARIANTS = {
    "elt": "`elt run jaffle_daily`",
    "airflow": "Airflow scheduler + 2 Celery workers",
    "prefect": "Prefect server + `elt prefect worker`",
}


def bench_home() -> Path:
    """The benchmark's own state folder."""
    return Path(os.environ.get("BENCH_HOME") or ROOT / ".elt" / "bench" / "scheduled")


def _elt(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("elt")), *args]


def _call(url: str, method: str = "GET", body: Any = None, token: str | None = None) -> Any:
    """One JSON request to a local API (Airflow or Prefect), a 503 retried."""
    from orchestration.prefect.server import call_json

    return call_json(url, body, method=method, token=token)


def _checked(command: list[str], env: dict[str, str], what: str, timeout: float = 900) -> str:
    done = subprocess.run(
        command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{(done.stdout + done.stderr)[-3000:]}")
    return done.stdout


class ServicesPeak(threading.Thread):
    """The largest sum of the resident memory of some processes' trees, sampled until
    :meth:`stop`; ``idle`` is the first sample (before the run was asked for)."""

    def __init__(self, pids: list[int]) -> None:
        import psutil

        super().__init__(daemon=True)
        self.processes = [psutil.Process(pid) for pid in pids]
        self.idle = self.peak = self._sample()
        self._done = threading.Event()

    def _sample(self) -> int:
        return sum(tree_rss(process) for process in self.processes)

    def run(self) -> None:
        """Sample until stopped."""
        while not self._done.wait(0.05):
            self.peak = max(self.peak, self._sample())

    def stop(self) -> None:
        """Stop sampling."""
        self._done.set()
        self.join(timeout=5)


def _seconds(start: str | None, end: str | None) -> float | None:
    from datetime import datetime

    if not start or not end:
        return None
    parse = datetime.fromisoformat
    return (parse(end.replace("Z", "+00:00")) - parse(start.replace("Z", "+00:00"))).total_seconds()


def _wait(poll, final: set[str], what: str) -> dict:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        found = poll()
        if found["state"] in final:
            return found
        time.sleep(POLL_S)
    raise RuntimeError(f"{what} not finished within {RUN_TIMEOUT_S} s")


class Airflow:
    """``elt airflow up --executor celery`` and DAG runs through its REST API."""

    def __init__(self, env: dict[str, str]) -> None:
        from orchestration.airflow.local import services
        from orchestration.prefect.server import free_port

        self.env = env
        self.url = f"http://127.0.0.1:{free_port()}"
        port = self.url.rsplit(":", 1)[1]
        _checked(_elt("airflow", "up", "--executor", "celery", "--port", port), env, "airflow up")
        self.pids = [s.pid for s in services() if s.running and s.pid]
        self.token = _call(f"{self.url}/auth/token")["access_token"]
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._api("GET", f"/dags?dag_id_pattern={PIPELINE}")["dags"]:
            if time.monotonic() > deadline:
                raise RuntimeError(f"Airflow did not parse {PIPELINE} in {START_TIMEOUT_S} s")
            time.sleep(2)
        self._api("PATCH", f"/dags/{PIPELINE}", {"is_paused": False})

    def _api(self, method: str, path: str, body: Any = None) -> Any:
        return _call(f"{self.url}/api/v2{path}", method, body, self.token)

    def run(self) -> dict:
        """One DAG run, from the request to its final state."""
        started = time.perf_counter()
        run = self._api("POST", f"/dags/{PIPELINE}/dagRuns", {"logical_date": None})
        path = f"/dags/{PIPELINE}/dagRuns/{urllib.request.quote(run['dag_run_id'], safe='')}"
        done = _wait(lambda: self._api("GET", path), {"success", "failed"}, "DAG run")
        wall = time.perf_counter() - started
        if done["state"] != "success":
            raise RuntimeError(f"DAG run {run['dag_run_id']} {done['state']}")
        return {"wall_s": wall, "run_s": _seconds(done["start_date"], done["end_date"])}

    def stop(self) -> None:
        """``elt airflow down`` (every service by PID)."""
        _checked(_elt("airflow", "down"), self.env, "airflow down", timeout=300)


class Prefect:
    """A Prefect server, the deployment and one worker; flow runs from the deployment."""

    def __init__(self, env: dict[str, str], home: Path) -> None:
        from orchestration.prefect import server

        self.server = server.start(home / "prefect-server")
        self.api = self.server.api_url
        self.env = {**env, "PREFECT_API_URL": self.api, "PREFECT_HOME": str(home / "prefect")}
        _checked(_elt("prefect", "deploy", PIPELINE), self.env, "elt prefect deploy")
        self.log = (home / "prefect-worker.log").open("wb")
        self.worker = subprocess.Popen(
            _elt("prefect", "worker", "--name", WORKER),
            env=self.env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # prefect's CLI runs the worker as a child
        )
        self.pids = [self.server.pid, self.worker.pid]
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._online():
            if time.monotonic() > deadline or self.worker.poll() is not None:
                raise RuntimeError(f"the Prefect worker did not come online; see {self.log.name}")
            time.sleep(1)
        deployments = _call(f"{self.api}/deployments/filter", "POST", {})
        flows = {f["id"]: f["name"] for f in _call(f"{self.api}/flows/filter", "POST", {})}
        (self.deployment,) = [
            d["id"] for d in deployments if flows[d["flow_id"]] == PIPELINE and d["name"] == "local"
        ]

    def _online(self) -> bool:
        found = _call(f"{self.api}/work_pools/elt-local/workers/filter", "POST", {})
        return any(w["name"] == WORKER and w["status"] == "ONLINE" for w in found)

    def run(self) -> dict:
        """One flow run from the deployment, from the request to its final state."""
        started = time.perf_counter()
        created = _call(f"{self.api}/deployments/{self.deployment}/create_flow_run", "POST", {})

        def poll() -> dict:
            found = _call(f"{self.api}/flow_runs/{created['id']}")
            return {**found, "state": found["state_type"]}

        final = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
        done = _wait(poll, final, "flow run")
        wall = time.perf_counter() - started
        if done["state"] != "COMPLETED":
            raise RuntimeError(f"flow run {created['id']} {done['state']}: see {self.log.name}")
        return {"wall_s": wall, "run_s": _seconds(done["start_time"], done["end_time"])}

    def stop(self) -> None:
        """The worker's process group, then the server, by PID."""
        if self.worker.poll() is None:
            os.killpg(self.worker.pid, signal.SIGTERM)
            try:
                self.worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.worker.pid, signal.SIGKILL)
                self.worker.wait(timeout=10)
        self.log.close()
        self.server.stop()


def _bench_config(home: Path) -> Path:
    """The project's pipelines.yml with ``jaffle_daily`` alone, started on purpose only."""
    import yaml

    from elt import paths

    document = yaml.safe_load(paths.config_file().read_text())
    pipe = document["pipelines"][PIPELINE]
    pipe.update(schedule=None, retries={"count": 0, "delay": "1s"})
    pipe["notify"] = {"on": ["failure"], "urls": []}
    document["pipelines"] = {PIPELINE: pipe}
    path = home / "pipelines.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _setup(years: float) -> dict[str, str]:
    """State folder, warehouse, demo sources and API, bench config, the first full load."""
    home = bench_home()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["ELT_HOME"] = str(home)
    for key in ("ELT_WAREHOUSE_URL", "ELT_CONFIG", "PYTHONDONTWRITEBYTECODE", "PREFECT_API_URL"):
        os.environ.pop(key, None)  # its own warehouse; installed code has bytecode
    os.environ.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", None)
    from elt import demo, settings

    settings.apply_tool_env()
    demo.prepare(years=years)
    settings.load_local_env()
    demo.start_api()
    env = {**os.environ, **settings.tool_env(), "ELT_CONFIG": str(_bench_config(home))}
    _checked(_elt("run", PIPELINE), env, "the first elt run")
    return env


def _elt_run(env: dict[str, str]) -> dict:
    sample, _ = run_command(_elt("run", PIPELINE), env, timeout_s=RUN_TIMEOUT_S, cwd=ROOT)
    return {"wall_s": sample.wall_s, "run_s": None, "peak_mib": sample.peak_rss_mib}


def _service_run(service: Airflow | Prefect) -> dict:
    sampler = ServicesPeak(service.pids)
    sampler.start()
    try:
        measured = service.run()
    finally:
        sampler.stop()
    return {**measured, "peak_mib": sampler.peak / MIB, "idle_mib": sampler.idle / MIB}


@contextlib.contextmanager
def demo_home(years: float) -> Iterator[dict[str, str]]:
    """The benchmark's own state folder with ``years`` of demo data loaded once by ``elt run
    jaffle_daily``; yields the environment of commands that use it; the demo API and the
    warehouse are stopped afterwards."""
    from elt import demo

    env = _setup(years)
    try:
        yield env
    finally:
        demo.stop_api()
        _checked(_elt("down"), env, "elt down (the bench's warehouse)", timeout=120)


def measure(repeats: int, years: float) -> dict[str, list[dict]]:
    """Setup, then a warm-up round and ``repeats`` measured rounds; samples per variant."""
    with demo_home(years) as env:
        return _measure(env, repeats)


def _measure(env: dict[str, str], repeats: int) -> dict[str, list[dict]]:
    airflow = prefect = None
    samples: dict[str, list[dict]] = {name: [] for name in VARIANTS}
    try:
        airflow = Airflow(env)
        prefect = Prefect(env, bench_home())
        runners = {
            "elt": lambda: _elt_run(env),
            "airflow": lambda: _service_run(airflow),
            "prefect": lambda: _service_run(prefect),
        }
        for round_ in range(repeats + 1):
            for name, runner in runners.items():
                sample = runner()
                print(f"round {round_} {name}: {json.dumps(sample)}", file=sys.stderr, flush=True)
                if round_:
                    samples[name].append(sample)
    finally:
        for service in (prefect, airflow):
            if service is not None:
                service.stop()
    return samples


def verdicts(samples: dict[str, list[dict]]) -> list[dict]:
    """Issue 17's target for each orchestrated variant: wall time ≤ TARGET× `elt run`."""
    base = summarize([s["wall_s"] for s in samples["elt"]]).median
    return [
        verdict(
            f"{label} ≤ {TARGET:g}× `elt run` of the same pipeline",
            ratio(summarize([s["wall_s"] for s in samples[name]]).median, base),
            "<=",
            TARGET,
        )
        for name, label in VARIANTS.items()
        if name != "elt" and samples.get(name)
    ]


def report(samples: dict[str, list[dict]], repeats: int, years: float) -> str:
    """Markdown: one row per variant (medians, min–max), the time ratio to ``elt run``."""
    base = summarize([s["wall_s"] for s in samples["elt"]])
    rows = []
    for name, label in VARIANTS.items():
        wall = summarize([s["wall_s"] for s in samples[name]])
        runs = [s["run_s"] for s in samples[name] if s["run_s"] is not None]
        idle = [s["idle_mib"] for s in samples[name] if "idle_mib" in s]
        within = ratio(wall.median, base.median)
        rows.append(
            [
                label,
                fmt_spread(wall),
                fmt_ratio(within),
                "met" if within is not None and within <= TARGET else "not met",
                fmt_spread(summarize(runs)) if runs else "–",
                fmt_spread(summarize([s["peak_mib"] for s in samples[name]]), 0),
                fmt_spread(summarize(idle), 0) if idle else "–",
            ]
        )
    headers = [
        f"{PIPELINE}, {years:g} demo years",
        "wall s",
        "× elt run",
        f"≤ {TARGET}×",
        "run s (orchestrator's start → end)",
        "peak RSS MiB",
        "services idle MiB",
    ]
    rounds = f"{repeats} round(s) after a warm-up, interleaved; medians (min–max)"
    return f"{markdown_table(headers, rows)}\n\n{rounds}."


def write_block(table: str) -> Path:
    """Put ``table`` into the ``scheduled`` block of BENCHMARKS.md (the rest is kept)."""
    from bench.report import benchmarks_file
    from bench.stats import replace_block

    path = benchmarks_file()
    begin = path.read_text()
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    content = f"Measured {stamp} by `.venv/bin/python bench/scheduled.py --write`:\n\n{table}"
    path.write_text(replace_block(begin, BLOCK, content))
    return path


def main() -> None:
    """Command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--years", type=float, default=0.1)
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md's block")
    args = parser.parse_args()
    samples = measure(args.repeats, args.years)
    table = report(samples, args.repeats, args.years)
    write_verdicts(verdicts(samples))
    print(table)
    print(json.dumps(samples))
    if args.write:
        print(f"written to {write_block(table)}", file=sys.stderr)


if __name__ == "__main__":
    main()
