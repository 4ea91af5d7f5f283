"""The k8s manifests rendered and checked offline by k8s/validate.sh with its pinned tools:
every overlay renders, every object validates against the Kubernetes schema, checkov finds no
failed check, hadolint finds nothing in the image definition. Then the rendered objects
themselves are inspected (restricted pods, no exposed Service, no Secret in the render), and
a deliberately insecure overlay is shown to fail the same checks.

The tools come from PyPI through uvx on the first run and from uv's cache afterwards.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from elt import paths
from tests.helpers.k8s_manifests import (
    K8S_DIR,
    OVERLAYS_DIR,
    exposure_problems,
    object_id,
    overlay_names,
    pod_security_problems,
    rendered_objects,
    yaml_documents,
)

pytestmark = pytest.mark.integration

ROOT = paths.project_root()
VALIDATE = K8S_DIR / "validate.sh"
KUBERNETES_VERSION = "1.32"
# custom resources: kubernetes-validate has no schema for them (the unit tests check them)
CRD_KINDS = {"ExternalSecret"}
VALIDATE_TIMEOUT_S = 600


@dataclass(frozen=True)
class Validation:
    """One run of k8s/validate.sh: its output folder and the finished process."""

    out: Path
    process: subprocess.CompletedProcess[str]

    @property
    def reports(self) -> Path:
        return self.out / "reports"

    def rendered(self, env: str) -> list[dict]:
        return rendered_objects(self.out / f"{env}.yaml")


def _run_validate(out: Path, overlays: Path | None = None) -> Validation:
    env = {**os.environ, "ELT_K8S_OUT": str(out)}
    if overlays is not None:
        env["ELT_K8S_OVERLAYS"] = str(overlays)
    process = subprocess.run(
        ["bash", str(VALIDATE)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=VALIDATE_TIMEOUT_S,
        check=False,
    )
    return Validation(out, process)


def _checkov_results(validation: Validation) -> list[dict]:
    report = json.loads((validation.reports / "checkov.json").read_text())
    return report if isinstance(report, list) else [report]


@pytest.fixture(scope="module")
def validated(tmp_path_factory: pytest.TempPathFactory) -> Validation:
    return _run_validate(tmp_path_factory.mktemp("k8s"))


def test_validate_script_passes(validated: Validation) -> None:
    process = validated.process
    assert process.returncode == 0, f"k8s/validate.sh failed:\n{process.stdout}\n{process.stderr}"
    assert "kubernetes-validate (Kubernetes 1.32.0, strict): passed" in process.stdout
    assert "checkov (kubernetes, dockerfile): no failed check" in process.stdout
    assert "hadolint k8s/Dockerfile: no finding" in process.stdout


@pytest.mark.parametrize("env", overlay_names())
def test_every_overlay_renders(validated: Validation, env: str) -> None:
    assert f"rendered overlay {env} -> " in validated.process.stdout
    objects = validated.rendered(env)
    kinds = {obj["kind"] for obj in objects}
    assert {"Namespace", "ConfigMap", "NetworkPolicy", "Job", "Ingress"} <= kinds
    assert all(
        obj["metadata"].get("namespace") == "elt" for obj in objects if obj["kind"] != "Namespace"
    )


@pytest.mark.parametrize("env", overlay_names())
def test_every_rendered_object_validates_against_the_schema(
    validated: Validation, env: str
) -> None:
    report = (validated.reports / "kubernetes-validate.txt").read_text().splitlines()
    mine = [line for line in report if f"/{env}.yaml " in line]
    assert not [line for line in mine if line.startswith("ERROR")]
    for obj in validated.rendered(env):
        kind, name = obj["kind"], obj["metadata"]["name"]
        if kind in CRD_KINDS:
            continue
        expected = f"passed for resource {kind.lower()}/{name} against version {KUBERNETES_VERSION}"
        assert any(expected in line for line in mine), f"{env}: {kind}/{name} was not validated"
    warned = {re.search(r"kind (\w+)", line).group(1) for line in mine if line.startswith("WARN")}
    assert warned <= CRD_KINDS, f"{env}: no schema for {warned - CRD_KINDS}"


def test_checkov_reports_no_failed_check(validated: Validation) -> None:
    results = {result["check_type"]: result for result in _checkov_results(validated)}
    assert set(results) == {"kubernetes", "dockerfile"}
    for check_type, result in results.items():
        summary = result["summary"]
        failed = [
            f"{c['check_id']} {c['resource']}" for c in result["results"].get("failed_checks", [])
        ]
        assert summary["failed"] == 0 and not failed, f"checkov {check_type}: {failed}"
        assert summary["parsing_errors"] == 0 and summary["passed"] > 0
    assert results["kubernetes"]["summary"]["resource_count"] >= sum(
        len(validated.rendered(env)) - 1 for env in overlay_names()
    )


def test_image_definition_is_linted(validated: Validation) -> None:
    assert (validated.reports / "hadolint.txt").read_text().strip() == ""


@pytest.mark.parametrize("env", overlay_names())
def test_rendered_workloads_are_restricted_and_nothing_is_exposed(
    validated: Validation, env: str
) -> None:
    objects = validated.rendered(env)
    assert pod_security_problems(objects) == []
    assert exposure_problems(objects) == []
    (namespace,) = [obj for obj in objects if obj["kind"] == "Namespace"]
    labels = namespace["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"


@pytest.mark.parametrize("env", overlay_names())
def test_network_policies_deny_by_default_and_allow_the_database(
    validated: Validation, env: str
) -> None:
    policies = {
        obj["metadata"]["name"]: obj["spec"]
        for obj in validated.rendered(env)
        if obj["kind"] == "NetworkPolicy"
    }
    deny = policies["default-deny-all"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny
    dns_ports = {
        p["port"] for rule in policies["allow-dns-egress"]["egress"] for p in rule["ports"]
    }
    assert dns_ports == {53}
    (postgres,) = policies["allow-postgres-egress"]["egress"]
    assert postgres["ports"] == [{"protocol": "TCP", "port": 5432}]
    # every environment names its database subnet instead of the base's placeholder
    assert postgres["to"][0]["ipBlock"]["cidr"] != "192.0.2.0/24"


@pytest.mark.parametrize("env", overlay_names())
def test_workloads_run_the_overlay_image_tag(validated: Validation, env: str) -> None:
    kustomization = yaml_documents(OVERLAYS_DIR / env / "kustomization.yaml")[0]
    (image,) = [i for i in kustomization["images"] if i["name"] == "elt-platform"]
    expected = f"{image['newName']}:{image['newTag']}"
    (job,) = [obj for obj in validated.rendered(env) if object_id(obj) == "Job/elt-migrate"]
    assert [c["image"] for c in job["spec"]["template"]["spec"]["containers"]] == [expected]


def test_an_insecure_overlay_fails_the_same_checks(tmp_path: Path) -> None:
    """A patch that weakens the Job and exposes a Service: every check must object."""
    overlay = tmp_path / "overlays" / "insecure"
    overlay.mkdir(parents=True)
    base = os.path.relpath(OVERLAYS_DIR / "dev", overlay)
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources: [{base}, service.yaml]\n"
        "patches:\n  - target: {kind: Job, name: elt-migrate}\n    patch: |-\n"
        "      - {op: replace, path: /spec/template/spec/containers/0/securityContext,"
        " value: {allowPrivilegeEscalation: true, readOnlyRootFilesystem: false}}\n"
        "      - {op: add, path: /spec/template/spec/containers/0/unknownField, value: 1}\n"
    )
    (overlay / "service.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: airflow-public}\n"
        "spec: {type: LoadBalancer, ports: [{port: 80}], selector: {app: airflow}}\n"
    )
    result = _run_validate(tmp_path / "out", tmp_path / "overlays")

    assert result.process.returncode == 1
    assert "did not validate for resource job/elt-migrate" in result.process.stderr
    (kubernetes,) = [r for r in _checkov_results(result) if r["check_type"] == "kubernetes"]
    failed = {c["check_id"] for c in kubernetes["results"]["failed_checks"]}
    assert {"CKV_K8S_20", "CKV_K8S_22"} <= failed  # privilege escalation, writable root
    objects = result.rendered("insecure")
    assert "Job/elt-migrate/migrate: allowPrivilegeEscalation is not false" in (
        pod_security_problems(objects)
    )
    assert exposure_problems(objects) == ["Service/airflow-public: Service type LoadBalancer"]
