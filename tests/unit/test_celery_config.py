"""Our Airflow workers import the task modules once: Celery workers through Airflow's Celery
settings plus those modules, the LocalExecutor's scheduler before it forks its workers."""

from __future__ import annotations

import importlib.util

from orchestration.airflow import celery_workers


def test_the_workers_celery_config_is_airflows_plus_the_preloaded_modules():
    from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

    from orchestration.airflow.celery_config import CELERY_CONFIG, PRELOADED

    assert {k: v for k, v in CELERY_CONFIG.items() if k != "imports"} == DEFAULT_CELERY_CONFIG
    assert CELERY_CONFIG["imports"][-len(PRELOADED) :] == PRELOADED
    missing = [name for name in PRELOADED if importlib.util.find_spec(name) is None]
    assert missing == []


def test_the_executor_environment_names_that_config():
    env = celery_workers.executor_env("redis://127.0.0.1:1/0", "postgresql://x@127.0.0.1/af")
    module, _, attribute = env["AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"].rpartition(".")
    assert attribute == "CELERY_CONFIG"
    assert hasattr(importlib.import_module(module), attribute)


def test_the_local_scheduler_imports_the_task_modules_before_it_forks():
    from orchestration.airflow import local, preload

    scheduler = local.service_command("scheduler")
    assert scheduler[1:] == [
        "-m",
        "orchestration.airflow.preload",
        "scheduler",
        "--skip-serve-logs",
    ]
    assert local.service_command("scheduler", executor="celery")[1:] == scheduler[3:]
    assert local.service_command("api-server")[1:] == ["api-server"]
    missing = [name for name in preload.PRELOADED if importlib.util.find_spec(name) is None]
    assert missing == []
