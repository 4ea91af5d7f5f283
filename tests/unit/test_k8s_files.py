"""Offline checks of the deployment files: the image definition, the Helm values (keys that
exist in the charts' values schemas), Secrets without values, and that names agree across
manifests, values, External Secrets, pipelines.yml and docs/deploy.md.

The slow checks that render and scan the manifests with external tools are in
tests/integration/test_k8s.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from elt import paths
from tests.helpers.k8s_manifests import (
    HELM_DIR,
    K8S_DIR,
    OVERLAYS_DIR,
    PLACEHOLDERS,
    dockerfile_instructions,
    env_assignments,
    k8s_yaml_files,
    literal_secrets,
    load_yaml,
    overlay_names,
    secret_values,
    unchecked_keys,
    urls_with_passwords,
    yaml_documents,
)

ROOT = paths.project_root()
DOCKERFILE = K8S_DIR / "Dockerfile"
DEPLOY_DOC = ROOT / "docs" / "deploy.md"
SECRET_TEMPLATES = K8S_DIR / "secrets" / "templates.yaml"
EXTERNAL_SECRETS = K8S_DIR / "components" / "external-secrets" / "externalsecrets.yaml"
BASE_JOB_TEMPLATE = K8S_DIR / "prefect" / "base-job-template.json"

# Keys looked up in the charts' values.schema.json (apache/airflow chart/, chart 1.18+ with
# Airflow 3 `apiServer`; PrefectHQ/prefect-helm charts/prefect-server and prefect-worker).
# A path covers everything below it: those are free-form in the schema (airflow.cfg sections,
# Kubernetes objects such as resources, security contexts, containers, env lists).
AIRFLOW_KEYS = {
    "airflowVersion", "executor", "uid", "gid",
    "images.airflow.repository", "images.airflow.tag", "images.airflow.pullPolicy",
    "securityContexts.pod", "securityContexts.container", "volumes", "volumeMounts",
    "data.metadataSecretName", "fernetKeySecretName", "apiSecretKeySecretName", "jwtSecretName",
    "postgresql.enabled", "redis.enabled", "pgbouncer.enabled", "statsd.enabled",
    "dags.persistence.enabled", "dags.gitSync.enabled",
    "logs.persistence.enabled", "logs.persistence.size",
    "extraEnvFrom", "config",
    "workers.resources", "workers.extraInitContainers", "workers.env",
    "scheduler.replicas", "scheduler.labels", "scheduler.resources",
    "scheduler.extraInitContainers",
    "apiServer.replicas", "apiServer.resources", "apiServer.service.type",
    "apiServer.args", "apiServer.extraVolumes", "apiServer.extraVolumeMounts",
    "apiServer.defaultUser.enabled", "webserver.defaultUser.enabled",
    "dagProcessor.resources",
    "triggerer.persistence.enabled", "triggerer.resources",
    "migrateDatabaseJob.resources",
    "ingress.web.enabled", "networkPolicies.enabled",
}  # fmt: skip
PREFECT_SERVER_KEYS = {
    "global.prefect.image.repository", "global.prefect.image.prefectTag",
    "server.replicaCount", "server.resources.requests.cpu", "server.resources.requests.memory",
    "server.resources.limits.cpu", "server.resources.limits.memory",
    "server.podSecurityContext.runAsUser", "server.podSecurityContext.runAsNonRoot",
    "server.podSecurityContext.fsGroup", "server.podSecurityContext.seccompProfile.type",
    "server.containerSecurityContext.runAsUser",
    "server.containerSecurityContext.runAsNonRoot",
    "server.containerSecurityContext.readOnlyRootFilesystem",
    "server.containerSecurityContext.allowPrivilegeEscalation",
    "server.containerSecurityContext.capabilities",
    "server.basicAuth.enabled", "server.basicAuth.existingSecret",
    "server.uiConfig.enabled", "server.uiConfig.prefectUiApiUrl", "server.env",
    "service.type", "service.port", "ingress.enabled",
    "postgresql.enabled", "sqlite.enabled", "secret.create", "secret.name",
    "serviceAccount.create",
}  # fmt: skip
PREFECT_WORKER_KEYS = {
    "worker.image.repository", "worker.image.prefectTag",
    "worker.apiConfig", "worker.serverApiConfig.apiUrl",
    "worker.basicAuth.enabled", "worker.basicAuth.existingSecret",
    "worker.config.workPool", "worker.config.type", "worker.config.limit",
    "worker.config.baseJobTemplate.existingConfigMapName",
    "worker.replicaCount",
    "worker.initContainer.resources.requests.cpu", "worker.initContainer.resources.requests.memory",
    "worker.initContainer.resources.limits.cpu", "worker.initContainer.resources.limits.memory",
    "worker.initContainer.containerSecurityContext.runAsUser",
    "worker.initContainer.containerSecurityContext.runAsNonRoot",
    "worker.initContainer.containerSecurityContext.readOnlyRootFilesystem",
    "worker.initContainer.containerSecurityContext.allowPrivilegeEscalation",
    "worker.initContainer.containerSecurityContext.capabilities",
    "worker.resources.requests.cpu", "worker.resources.requests.memory",
    "worker.resources.limits.cpu", "worker.resources.limits.memory",
    "worker.podLabels",
    "worker.podSecurityContext.runAsUser", "worker.podSecurityContext.runAsNonRoot",
    "worker.podSecurityContext.fsGroup", "worker.podSecurityContext.seccompProfile.type",
    "worker.containerSecurityContext.runAsUser",
    "worker.containerSecurityContext.runAsNonRoot",
    "worker.containerSecurityContext.readOnlyRootFilesystem",
    "worker.containerSecurityContext.allowPrivilegeEscalation",
    "worker.containerSecurityContext.capabilities",
    "serviceAccount.create", "role.create", "rolebinding.create",
}  # fmt: skip
CHART_KEYS = {
    "airflow-values.yaml": AIRFLOW_KEYS,
    "prefect-server-values.yaml": PREFECT_SERVER_KEYS,
    "prefect-worker-values.yaml": PREFECT_WORKER_KEYS,
}
# the ConfigMap the worker values name, made from the Prefect base job template
BASE_JOB_TEMPLATE_CONFIGMAP = "prefect-base-job-template"
# an exact release (major.minor.patch, e.g. 3.11.14-slim-bookworm) and/or a digest
_PINNED_IMAGE = re.compile(r"^[\w./-]+(:\d+\.\d+\.\d+[\w.-]*)?(@sha256:[0-9a-f]{64})?$")
_ENV_REF = re.compile(r"env:([A-Z][A-Z0-9_]*)\??")
_SECRET_NAME_IN_ENV = re.compile(r"(PASSWORD|SECRET|TOKEN|CREDENTIAL|_KEY$|_URL$)", re.I)


def _instructions(keyword: str) -> list:
    return [i for i in dockerfile_instructions(DOCKERFILE) if i.keyword == keyword]


def _lock_version(package: str) -> str:
    match = re.search(
        rf'^name = "{re.escape(package)}"\nversion = "([^"]+)"',
        (ROOT / "uv.lock").read_text(),
        re.MULTILINE,
    )
    assert match, f"{package} is not in uv.lock"
    return match.group(1)


def _values_files() -> list[Path]:
    """Base Helm values and every overlay's overrides, for the chart they configure."""
    files = [HELM_DIR / name for name in CHART_KEYS]
    for env in overlay_names():
        files += [OVERLAYS_DIR / env / name for name in CHART_KEYS]
    return files


def _values(path: Path) -> dict[str, Any]:
    data = load_yaml(path.read_text())
    assert isinstance(data, dict), f"{path.relative_to(ROOT)} is not a YAML mapping"
    return data


def _templates() -> dict[str, set[str]]:
    """Secret name → keys, from k8s/secrets/templates.yaml."""
    return {
        doc["metadata"]["name"]: set(secret_values(doc)) for doc in yaml_documents(SECRET_TEMPLATES)
    }


def _walk(value: Any):
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


def _strings(value: Any):
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


def _secret_refs(value: Any) -> set[tuple[str, str | None]]:
    """(Secret, key or None) pairs referenced through secretKeyRef / secretRef."""
    refs: set[tuple[str, str | None]] = set()
    for node in _walk(value):
        if "secretKeyRef" in node:
            refs.add((node["secretKeyRef"]["name"], node["secretKeyRef"]["key"]))
        if "secretRef" in node:
            refs.add((node["secretRef"]["name"], None))
        if isinstance(node.get("secret"), dict) and "secretName" in node["secret"]:
            refs.add((node["secret"]["secretName"], None))
    return refs


# -- the image definition ---------------------------------------------------------------


def test_dockerfile_is_multi_stage_with_pinned_bases() -> None:
    stages = _instructions("FROM")
    assert len(stages) >= 3, "expected uv, build and runtime stages"
    for stage in stages:
        image = stage.args.split()[0]
        assert ":latest" not in image and _PINNED_IMAGE.match(image), (
            f"k8s/Dockerfile:{stage.line}: base image {image!r} is not pinned to an exact "
            "version or digest"
        )
        assert ":" in image or "@" in image, f"k8s/Dockerfile:{stage.line}: {image} has no tag"
    names = [s.args.split()[-1] for s in stages if " AS " in s.args.upper()]
    assert names[:2] == ["uv", "build"]
    assert any("--from=build" in c.args for c in _instructions("COPY"))


def test_dockerfile_python_matches_the_project() -> None:
    pythons = {s.args.split()[0] for s in _instructions("FROM") if "python:" in s.args}
    assert len(pythons) == 1, f"build and runtime must share one Python image: {pythons}"
    minor = re.search(r"python:(\d+\.\d+)", pythons.pop())
    requires = re.search(r'requires-python = ">=(\d+\.\d+)"', (ROOT / "pyproject.toml").read_text())
    assert minor and requires and minor.group(1) == requires.group(1)


def test_dockerfile_runs_as_a_numeric_non_root_user() -> None:
    users = _instructions("USER")
    assert users, "k8s/Dockerfile has no USER"
    last = users[-1]
    assert last.line > _instructions("FROM")[-1].line, "USER must be set in the final stage"
    uid, _, gid = last.args.partition(":")
    assert uid.isdigit() and int(uid) >= 10000, f"USER {last.args}: use a numeric UID ≥ 10000"
    assert not gid or (gid.isdigit() and int(gid) != 0)


def test_dockerfile_installs_the_locked_environment_and_bakes_the_manifest() -> None:
    runs = [i.args for i in _instructions("RUN")]
    syncs = [r for r in runs if "uv sync" in r]
    assert syncs and all("--frozen" in r and "--no-dev" in r for r in syncs)
    parses = [r for r in runs if "dbt parse" in r]
    assert len(parses) == 1, "the dbt manifest must be built into the image by `dbt parse`"
    dummy = env_assignments(parses[0])
    assert {"PGHOST", "PGPORT", "PGUSER", "PGDATABASE"} <= set(dummy)
    assert not any(re.search("PASSWORD|SECRET", key) for key in dummy), dummy
    assert "manifest.json" in parses[0]


def test_dockerfile_keeps_secrets_out_of_env_and_args() -> None:
    for instruction in _instructions("ENV") + _instructions("ARG"):
        for key, value in env_assignments(instruction.args).items():
            assert not (_SECRET_NAME_IN_ENV.search(key) and value), (
                f"k8s/Dockerfile:{instruction.line}: {key} looks like a secret; pass it at run "
                "time from a Kubernetes Secret"
            )
    assert not urls_with_passwords(DOCKERFILE.read_text())


def test_dockerfile_health_and_entrypoint_are_decided() -> None:
    checks = _instructions("HEALTHCHECK")
    assert len(checks) == 1
    if checks[0].args.upper() == "NONE":
        assert "Kubernetes" in checks[0].comment, "HEALTHCHECK NONE needs its reason above it"
    # the charts pass `bash -c "exec airflow …"` as args: an ENTRYPOINT would swallow them
    assert not _instructions("ENTRYPOINT")
    assert _instructions("CMD")


def test_dockerignore_lets_in_only_what_the_image_copies() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", ".dockerignore must start by excluding everything"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    for copy in _instructions("COPY"):
        if copy.args.startswith("--from"):
            continue
        for source in copy.args.split()[:-1]:
            assert source.rstrip("/") in allowed, f".dockerignore does not let in {source}"
    assert not allowed & {".elt", ".venv", ".git"}


# -- Helm values ------------------------------------------------------------------------


@pytest.mark.parametrize("path", _values_files(), ids=lambda p: str(p.relative_to(K8S_DIR)))
def test_helm_values_use_only_checked_chart_keys(path: Path) -> None:
    unknown = unchecked_keys(_values(path), CHART_KEYS[path.name])
    assert not unknown, (
        f"{path.relative_to(ROOT)}: keys not checked against the chart's values schema: "
        f"{unknown} (look them up, then add them to CHART_KEYS in this test)"
    )


def test_airflow_values_run_our_image_with_the_kubernetes_executor() -> None:
    values = _values(HELM_DIR / "airflow-values.yaml")
    assert values["executor"] == "KubernetesExecutor"
    assert values["airflowVersion"] == _lock_version("apache-airflow")
    assert values["images"]["airflow"]["repository"].endswith("/elt-platform")
    assert values["dags"]["persistence"]["enabled"] is False
    assert values["dags"]["gitSync"]["enabled"] is False
    assert values["config"]["core"]["dags_folder"] == "/app/orchestration/airflow/dags"
    assert values["data"]["metadataSecretName"] and values["postgresql"]["enabled"] is False
    assert values["apiServer"]["service"]["type"] == "ClusterIP"
    assert values["uid"] == 10001, "the chart's uid must be the image's USER"
    pools = [c for c in values["scheduler"]["extraInitContainers"] if c["name"] == "sync-pools"]
    assert pools and pools[0]["command"] == ["elt", "airflow", "sync-pools"]


def test_airflow_needs_the_kubernetes_provider_in_the_lock() -> None:
    # the KubernetesExecutor ships in this provider; the image installs exactly uv.lock
    assert _lock_version("apache-airflow-providers-cncf-kubernetes"), (
        "add apache-airflow-providers-cncf-kubernetes to pyproject.toml and re-lock"
    )


def test_prefect_values_match_the_locked_prefect_and_the_work_pool() -> None:
    prefect = _lock_version("prefect")
    server = _values(HELM_DIR / "prefect-server-values.yaml")
    worker = _values(HELM_DIR / "prefect-worker-values.yaml")["worker"]
    assert server["global"]["prefect"]["image"]["prefectTag"].startswith(f"{prefect}-")
    assert worker["image"]["prefectTag"].startswith(f"{prefect}-")
    assert worker["config"]["type"] == "kubernetes"
    assert worker["config"]["baseJobTemplate"] == {
        "existingConfigMapName": BASE_JOB_TEMPLATE_CONFIGMAP
    }
    assert server["service"]["type"] == "ClusterIP"
    assert server["secret"] == {"create": False, "name": "prefect-db"}
    # the cluster's server records task-run states in batches, as the local one does
    from orchestration.prefect.server import SERVER_SETTINGS

    env = {item["name"]: item["value"] for item in server["server"]["env"]}
    assert {key: env.get(key) for key in SERVER_SETTINGS} == SERVER_SETTINGS


def test_prefect_base_job_template_is_the_one_the_docs_load() -> None:
    assert BASE_JOB_TEMPLATE.exists(), "k8s/prefect/base-job-template.json is missing"
    template = json.loads(BASE_JOB_TEMPLATE.read_text())
    assert {"job_configuration", "variables"} <= set(template)
    doc = DEPLOY_DOC.read_text()
    assert (
        f"kubectl create configmap {BASE_JOB_TEMPLATE_CONFIGMAP}" in doc
        and "baseJobTemplate.json=k8s/prefect/base-job-template.json" in doc
    )


def test_prefect_job_template_fits_the_namespace() -> None:
    template = json.loads(BASE_JOB_TEMPLATE.read_text())
    defaults = {k: v.get("default") for k, v in template["variables"]["properties"].items()}
    base = {
        (doc["kind"], doc["metadata"]["name"])
        for path in (K8S_DIR / "base").glob("*.yaml")
        for doc in yaml_documents(path)
        if "metadata" in doc
    }
    assert ("ServiceAccount", defaults["service_account_name"]) in base
    assert defaults["namespace"] == _values(K8S_DIR / "base" / "kustomization.yaml")["namespace"]
    repositories = {
        image["newName"]
        for env in overlay_names()
        for image in _values(OVERLAYS_DIR / env / "kustomization.yaml")["images"]
    }
    assert defaults["image"].rpartition(":")[0] in repositories
    pod = template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]
    config_maps = {
        source["configMapRef"]["name"]
        for container in pod["containers"]
        for source in container.get("envFrom", [])
        if "configMapRef" in source
    }
    assert config_maps <= {name for kind, name in base if kind == "ConfigMap"}


@pytest.mark.parametrize("env", overlay_names())
def test_overlay_image_tag_is_the_airflow_image_tag(env: str) -> None:
    kustomization = _values(OVERLAYS_DIR / env / "kustomization.yaml")
    (image,) = [i for i in kustomization["images"] if i["name"] == "elt-platform"]
    airflow = _values(OVERLAYS_DIR / env / "airflow-values.yaml")
    assert airflow["images"]["airflow"]["tag"] == image["newTag"]
    assert image["newTag"] != "latest"


# -- secrets ----------------------------------------------------------------------------


def test_no_secret_under_k8s_carries_a_value() -> None:
    secrets = 0
    for path in k8s_yaml_files():
        for doc in yaml_documents(path):
            if doc.get("kind") == "Secret":
                secrets += 1
                filled = {k: v for k, v in secret_values(doc).items() if v not in PLACEHOLDERS}
                assert not filled, f"{path.relative_to(ROOT)}: Secret values {sorted(filled)}"
            leaks = literal_secrets(doc)
            assert not leaks, f"{path.relative_to(ROOT)}: literal secret values at {leaks}"
    assert secrets >= len(_templates())


def test_no_file_under_k8s_or_the_deploy_doc_holds_a_password_url() -> None:
    files = [p for p in K8S_DIR.rglob("*") if p.is_file()] + [DEPLOY_DOC, ROOT / ".dockerignore"]
    for path in files:
        leaks = urls_with_passwords(path.read_text(errors="replace"))
        assert not leaks, f"{path.relative_to(ROOT)}: URLs with a password: {leaks}"


def test_secret_detectors_catch_what_they_guard_against() -> None:
    assert literal_secrets({"server": {"basicAuth": {"authString": "admin:hunter2"}}})
    assert literal_secrets({"data": {"metadataConnection": {"pass": "postgres"}}})
    assert not literal_secrets({"fernetKeySecretName": "airflow-fernet-key", "token": ""})
    assert urls_with_passwords("ELT_WAREHOUSE_URL=postgresql://loader:s3cr3t@db:5432/w")
    assert not urls_with_passwords("postgresql://user:password@host:5432/warehouse")
    with pytest.raises(yaml.YAMLError, match="duplicate key 'core'"):
        load_yaml("config:\n  core: {a: 1}\n  core: {b: 2}\n")


def test_every_referenced_secret_is_declared_with_its_keys() -> None:
    templates = _templates()
    refs: set[tuple[str, str | None]] = set()
    for path in [*(K8S_DIR / "base").glob("*.yaml"), *_values_files()]:
        for doc in yaml_documents(path):
            refs |= _secret_refs(doc)
    refs |= _secret_refs(json.loads(BASE_JOB_TEMPLATE.read_text()))
    airflow = _values(HELM_DIR / "airflow-values.yaml")
    server = _values(HELM_DIR / "prefect-server-values.yaml")
    refs |= {
        (airflow["data"]["metadataSecretName"], "connection"),
        (airflow["fernetKeySecretName"], "fernet-key"),
        (airflow["apiSecretKeySecretName"], "api-secret-key"),
        (airflow["jwtSecretName"], "jwt-secret"),
        (server["secret"]["name"], "connection-string"),
        (server["server"]["basicAuth"]["existingSecret"], "auth-string"),
    }
    for name, key in sorted(refs, key=str):
        assert name in templates, f"Secret {name} is used but not in k8s/secrets/templates.yaml"
        assert key is None or key in templates[name], f"Secret {name} has no key {key}"


def test_external_secrets_mirror_the_templates() -> None:
    mirrored = {}
    for doc in yaml_documents(EXTERNAL_SECRETS):
        assert doc["apiVersion"] == "external-secrets.io/v1" and doc["kind"] == "ExternalSecret"
        spec = doc["spec"]
        assert spec["target"]["name"] == doc["metadata"]["name"]
        assert spec["secretStoreRef"]["kind"] == "ClusterSecretStore"
        assert all(set(item["remoteRef"]) == {"key", "property"} for item in spec["data"])
        mirrored[doc["metadata"]["name"]] = {item["secretKey"] for item in spec["data"]}
    assert mirrored == _templates()


def test_pipeline_env_references_reach_the_task_pods() -> None:
    config = yaml.safe_load((ROOT / "pipelines.yml").read_text())
    names = {m.group(1) for text in _strings(config) if (m := _ENV_REF.fullmatch(text))}
    assert names, "pipelines.yml references no environment variable"
    workers = _values(HELM_DIR / "airflow-values.yaml")["workers"]["env"]
    given = {item["name"] for item in workers}
    assert names <= given, f"Airflow task pods miss {sorted(names - given)}"
    declared = set().union(*_templates().values())
    assert names <= declared, f"k8s/secrets/templates.yaml misses {sorted(names - declared)}"


# -- policy scan settings and docs ------------------------------------------------------


def test_every_skipped_checkov_check_has_a_reason() -> None:
    config = K8S_DIR / ".checkov.yaml"
    skipped = yaml.safe_load(config.read_text())["skip-check"]
    lines = config.read_text().splitlines()
    for check in skipped:
        (line,) = [x for x in lines if re.match(rf"\s*-\s*{check}\b", x)]
        reason = line.partition("#")[2].strip()
        assert len(reason) >= 40, f"k8s/.checkov.yaml: {check} is skipped without a reason"


def test_deploy_doc_covers_every_secret_values_file_and_overlay() -> None:
    doc = DEPLOY_DOC.read_text()
    for name in _templates():
        assert f"kubectl create secret generic {name}" in doc, f"docs/deploy.md: {name}"
    for path in HELM_DIR.glob("*.yaml"):
        assert f"-f {path.relative_to(ROOT)}" in doc, f"docs/deploy.md never uses {path.name}"
        assert f"-f k8s/overlays/<env>/{path.name}" in doc, f"no per-env {path.name} in docs"
    for mentioned in re.findall(r"(?<![\w./])(k8s/[\w./<>-]+\.(?:yaml|json|sh))", doc):
        for env in overlay_names():
            assert (ROOT / mentioned.replace("<env>", env)).exists(), f"docs: no {mentioned}"
