"""prefect.yaml generation, schedules and concurrency limits, from pipelines.yml (no server)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from elt import paths
from elt.config import load
from orchestration.prefect import deployments, limits, schedules

SECRET_DB_URL = "postgresql://loader:pa55-w0rd-xyz@db.internal:5432/shop"
SECRET_TOKEN = "tok-8f3a9c1e5b7d2f4a6c8e0b1d3f5a7c9e"
SECRET_ALERT = "json://hooks.example.com/T0KEN-ab12cd34ef56"

CONFIG = """
sources:
  shop:
    type: sql_database
    credentials: env:SHOP_DB_URL
    tables: {orders: {primary_key: id}}
  social:
    type: rest_api
    base_url: env:SOCIAL_API_URL
    auth: {type: bearer, token: env:SOCIAL_API_TOKEN}
    resources: {tweets: {path: tweets, primary_key: id}}
pipelines:
  nightly:
    description: Nightly load.
    schedule: "30 2 * * *"
    owner: analytics
    max_active_runs: 2
    tags: [core]
    sources: [shop, social]
    notify: {on: [failure], urls: ["env:ALERT_URL"]}
  daily:
    schedule: "@daily"
    sources: [shop]
  manual:
    sources: [shop]
  once:
    schedule: "@once"
    sources: [shop]
pools: {database: 3, api: 5}
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SHOP_DB_URL", SECRET_DB_URL)
    monkeypatch.setenv("SOCIAL_API_URL", "http://127.0.0.1:9/api")
    monkeypatch.setenv("SOCIAL_API_TOKEN", SECRET_TOKEN)
    monkeypatch.setenv("ALERT_URL", SECRET_ALERT)
    path = tmp_path / "pipelines.yml"
    path.write_text(CONFIG)
    return load(path, check_env=True)


def by_flow_and_name(document: dict) -> dict[tuple[str, str], dict]:
    return {
        (entry["entrypoint"].rsplit(":", 1)[1], entry["name"]): entry
        for entry in document["deployments"]
    }


@pytest.mark.parametrize(
    ("schedule", "cron"),
    [
        ("@hourly", "0 * * * *"),
        ("@daily", "0 0 * * *"),
        ("@weekly", "0 0 * * 0"),
        ("@monthly", "0 0 1 * *"),
        ("@yearly", "0 0 1 1 *"),
        ("15 6 * * 1-5", "15 6 * * 1-5"),
        ("@once", None),
        (None, None),
    ],
)
def test_schedules_become_cron_expressions(schedule, cron):
    assert schedules.cron_for(schedule) == cron


def test_data_interval_is_the_period_ending_at_the_scheduled_time():
    at = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
    assert schedules.data_interval("@daily", at) == (datetime(2026, 3, 1, tzinfo=UTC), at)
    # a run that starts a few seconds late still covers the period of its fire time
    late = datetime(2026, 3, 2, 0, 0, 7, tzinfo=UTC)
    assert schedules.data_interval("@daily", late) == (datetime(2026, 3, 1, tzinfo=UTC), at)
    weekly = schedules.data_interval("0 6 * * 1", datetime(2026, 3, 2, 6, 0, tzinfo=UTC))
    assert weekly[0] == datetime(2026, 2, 23, 6, 0, tzinfo=UTC)
    assert schedules.data_interval(None, at) is None
    assert schedules.data_interval("@once", at) is None


def test_every_pipeline_gets_a_local_and_a_kubernetes_deployment(config, tmp_path):
    document = deployments.prefect_yaml(config, project_dir=tmp_path, image="reg/elt:1.2.3")
    entries = by_flow_and_name(document)
    assert set(entries) == {
        (pipeline, target)
        for pipeline in ("nightly", "daily", "manual", "once")
        for target in ("local", "kubernetes")
    }
    nightly = entries["nightly", "local"]
    assert nightly["entrypoint"] == "orchestration/prefect/flows.py:nightly"
    assert nightly["schedules"] == [{"cron": "30 2 * * *", "timezone": "UTC", "active": True}]
    assert nightly["concurrency_limit"] == {"limit": 2, "collision_strategy": "ENQUEUE"}
    assert nightly["tags"] == ["core", "elt", "owner:analytics"]
    assert nightly["description"] == "Nightly load."
    assert nightly["work_pool"] == {
        "name": "elt-local",
        "work_queue_name": "default",
        "job_variables": {},
    }
    step = nightly["pull"][0]["prefect.deployments.steps.set_working_directory"]
    assert step == {"directory": str(tmp_path)}
    production = entries["nightly", "kubernetes"]
    assert production["work_pool"]["name"] == "elt-kubernetes"
    expected_variables = {"image": "reg/elt:1.2.3", "namespace": "elt"}
    assert production["work_pool"]["job_variables"] == expected_variables
    k8s_step = production["pull"][0]["prefect.deployments.steps.set_working_directory"]
    assert k8s_step == {"directory": "/app"}
    assert entries["daily", "local"]["schedules"][0]["cron"] == "0 0 * * *"
    assert entries["manual", "local"]["schedules"] == []
    assert entries["once", "kubernetes"]["schedules"] == []


def test_parameters_are_run_options_only_and_no_secret_reaches_the_file(config, tmp_path):
    document = deployments.prefect_yaml(config)
    for entry in document["deployments"]:
        assert entry["parameters"] == {"full_refresh": False}
    path = deployments.write_prefect_yaml(document, tmp_path / "prefect.yaml")
    text = path.read_text()
    secrets = (SECRET_DB_URL, "pa55-w0rd-xyz", SECRET_TOKEN, SECRET_ALERT, "T0KEN-ab12cd34ef56")
    for secret in secrets:
        assert secret not in text
    assert "password" not in text.lower()
    assert text.startswith("# Generated by `elt prefect deploy`")
    assert yaml.safe_load(text) == document


def test_deployment_names_per_target_and_unknown_pipeline(config):
    assert deployments.deployment_names(config, "local") == [
        "nightly/local",
        "daily/local",
        "manual/local",
        "once/local",
    ]
    assert deployments.deployment_names(config, "kubernetes", ["daily"]) == ["daily/kubernetes"]
    with pytest.raises(KeyError, match=r"no pipeline 'nigthly'.*did you mean 'nightly'"):
        deployments.deployment_names(config, "local", ["nigthly"])


def test_pools_become_tag_concurrency_limits(config):
    wanted = limits.wanted_limits(config)
    assert wanted["tag:database"] == 3
    assert wanted["tag:api"] == 5
    # pools the file does not mention keep their defaults
    assert wanted["tag:file_io"] == 6
    assert all(name.startswith("tag:") for name in wanted)


def test_kubernetes_job_template_is_restricted_and_takes_secrets_from_secrets():
    template = json.loads((paths.project_root() / "k8s/prefect/base-job-template.json").read_text())
    variables = template["variables"]["properties"]
    placeholders = {"command", "env", "labels", "name", "namespace", "image", "image_pull_policy"}
    assert placeholders <= set(variables)
    assert variables["service_account_name"]["default"] == "elt-flow-runs"
    pod = template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    assert container["name"] == "prefect-job"  # the Kubernetes worker requires this name
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    secrets = [ref["secretRef"]["name"] for ref in container["envFrom"] if "secretRef" in ref]
    assert secrets == ["elt-warehouse", "elt-sources", "elt-alerts"]
    # literal values in the template are paths only, never credentials
    assert {item["name"] for item in container["env"]} == {"PREFECT_HOME", "HOME"}
    mounted = {mount["mountPath"] for mount in container["volumeMounts"]}
    assert mounted == {"/tmp", "/var/lib/elt"}


def test_depends_on_becomes_deployment_triggers_on_the_published_event(tmp_path):
    from pydantic import TypeAdapter

    from orchestration.prefect import triggers

    path = tmp_path / "pipelines.yml"
    path.write_text(
        CONFIG.replace(
            "  manual:\n    sources: [shop]",
            "  manual:\n    sources: [shop]\n    depends_on: [daily]\n"
            "  report:\n    sources: [shop]\n    depends_on: [daily, nightly]",
        )
    )
    entries = by_flow_and_name(deployments.prefect_yaml(load(path), project_dir=tmp_path))
    assert entries["daily", "local"]["triggers"] == []
    one = entries["manual", "local"]["triggers"]
    assert one == [
        {
            "type": "event",
            "match": {"prefect.resource.id": "elt.pipeline.daily"},
            "expect": ["elt.pipeline.published"],
            "posture": "Reactive",
            "threshold": 1,
            "within": 0,
            "enabled": True,
        }
    ]
    both = entries["report", "kubernetes"]["triggers"][0]
    assert (both["type"], both["require"]) == ("compound", "all")
    matched = [t["match"]["prefect.resource.id"] for t in both["triggers"]]
    assert matched == ["elt.pipeline.daily", "elt.pipeline.nightly"]
    # what prefect deploy reads: each entry is a valid Prefect deployment trigger
    from prefect.events import DeploymentTriggerTypes

    for entry in (*one, both):
        TypeAdapter(DeploymentTriggerTypes).validate_python(entry)
    assert triggers.resource_id("daily") == "elt.pipeline.daily"
