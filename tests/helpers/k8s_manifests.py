"""Readers for the deployment files under ``k8s/``, shared by the unit and integration tests.

Dockerfile instructions (continuations joined, the comment block above each kept), YAML
documents, Helm value key paths, and the two secret detectors: literal values under
secret-like keys, and URLs that carry a password.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from elt import paths

K8S_DIR = paths.project_root() / "k8s"
OVERLAYS_DIR = K8S_DIR / "overlays"
HELM_DIR = K8S_DIR / "helm"

# values a Secret template may carry: nothing, or an obvious placeholder
PLACEHOLDERS = {"", "REPLACE_ME", "CHANGE_ME"}
# key names that hold a credential when given a literal value …
_SECRET_KEY = re.compile(
    r"(pass(word)?|secret|token|auth[-_]?string|fernet[-_]?key|api[-_]?key|credentials?)$",
    re.IGNORECASE,
)
# … unless they only name where the credential lives
_REFERENCE_KEY = re.compile(r"(secretname|existingsecret|secretref|secretkeyref)$", re.IGNORECASE)
# scheme://user:password@host — a password in a URL
_URL_WITH_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:([^@\s'\"]+)@", re.IGNORECASE)
# what a documentation example may show instead of a password
_EXAMPLE_PASSWORDS = {"password", "***", "pass", "secret"}


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction: keyword, its arguments, line, and the comments above it."""

    keyword: str
    args: str
    line: int
    comment: str


def dockerfile_instructions(path: Path) -> list[Instruction]:
    """The instructions of a Dockerfile, continuation lines joined."""
    instructions: list[Instruction] = []
    comments: list[str] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            comments = [*comments, line.lstrip("# ")] if line else []
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if not pending:
            start = number
        pending.append(line.removesuffix("\\").strip())
        if not line.endswith("\\"):
            keyword, _, args = " ".join(pending).partition(" ")
            instructions.append(
                Instruction(keyword.upper(), args.strip(), start, " ".join(comments))
            )
            pending, comments = [], []
    return instructions


def env_assignments(args: str) -> dict[str, str]:
    """``KEY=value`` pairs of an ENV/ARG instruction (or of a shell command's prefix)."""
    found: dict[str, str] = {}
    for word in shlex.split(args):
        key, sep, value = word.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            break
        found[key] = value
    return found


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a key given twice (YAML would keep the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> Any:
    """One YAML document, duplicate keys refused."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def yaml_documents(path: Path) -> list[dict[str, Any]]:
    """Every non-empty YAML document of a file, duplicate keys refused."""
    with path.open() as handle:
        return [doc for doc in yaml.load_all(handle, Loader=_UniqueKeyLoader) if doc]


def unchecked_keys(values: Any, checked: set[str], prefix: str = "") -> list[str]:
    """Key paths of ``values`` not covered by ``checked``.

    A checked path covers everything below it (free-form chart values such as ``config`` or
    ``resources``); any other mapping is walked down to its leaves.
    """
    if prefix in checked:
        return []
    if not isinstance(values, dict) or not values:
        return [prefix] if prefix else []
    missing: list[str] = []
    for key, value in values.items():
        missing += unchecked_keys(value, checked, f"{prefix}.{key}" if prefix else str(key))
    return missing


def _is_literal_secret(key: str, value: Any) -> bool:
    if not _SECRET_KEY.search(key) or _REFERENCE_KEY.search(key):
        return False
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return False  # switches such as automountServiceAccountToken: false
    return str(value) not in PLACEHOLDERS


def literal_secrets(value: Any, path: str = "") -> list[str]:
    """Paths under secret-like keys that hold a literal (non-placeholder) value."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if _is_literal_secret(str(key), item):
                found.append(where)
            found += literal_secrets(item, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += literal_secrets(item, f"{path}[{index}]")
    return found


def urls_with_passwords(text: str) -> list[str]:
    """URLs in ``text`` that carry a password other than an obvious documentation example."""
    leaks = []
    for match in _URL_WITH_PASSWORD.finditer(text):
        password = match.group(1)
        if password.lower() in _EXAMPLE_PASSWORDS or password[:1] in "<$":
            continue
        leaks.append(match.group(0))
    return leaks


def secret_values(doc: dict[str, Any]) -> dict[str, Any]:
    """The values a Secret manifest carries (``data`` and ``stringData``)."""
    return {**(doc.get("data") or {}), **(doc.get("stringData") or {})}


def overlay_names() -> list[str]:
    """The environments: one folder per overlay under ``k8s/overlays``."""
    return sorted(p.name for p in OVERLAYS_DIR.iterdir() if (p / "kustomization.yaml").exists())


def k8s_yaml_files() -> Iterator[Path]:
    """Every YAML file under ``k8s/``."""
    for pattern in ("*.yaml", "*.yml"):
        yield from sorted(K8S_DIR.rglob(pattern))


# -- rendered objects -------------------------------------------------------------------

_POD_TEMPLATE_PATHS = {
    "Pod": ("spec",),
    "Job": ("spec", "template", "spec"),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}


def rendered_objects(path: Path) -> list[dict[str, Any]]:
    """The objects of a rendered overlay (``kubectl kustomize`` output)."""
    return yaml_documents(path)


def object_id(obj: dict[str, Any]) -> str:
    """``Kind/name`` of an object, for messages."""
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


def pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The pod spec inside a workload object, or None for other kinds."""
    keys = _POD_TEMPLATE_PATHS.get(str(obj.get("kind")))
    if keys is None:
        return None
    spec: Any = obj
    for key in keys:
        spec = spec.get(key) or {}
    return spec


def _container_problems(where: str, container: dict[str, Any]) -> list[str]:
    context = container.get("securityContext") or {}
    problems = []
    if context.get("allowPrivilegeEscalation") is not False:
        problems.append(f"{where}: allowPrivilegeEscalation is not false")
    if context.get("readOnlyRootFilesystem") is not True:
        problems.append(f"{where}: readOnlyRootFilesystem is not true")
    if context.get("privileged"):
        problems.append(f"{where}: privileged")
    if "ALL" not in ((context.get("capabilities") or {}).get("drop") or []):
        problems.append(f"{where}: capabilities do not drop ALL")
    resources = container.get("resources") or {}
    for kind in ("requests", "limits"):
        if not {"cpu", "memory"} <= set(resources.get(kind) or {}):
            problems.append(f"{where}: no cpu and memory {kind}")
    image = str(container.get("image", ""))
    if image.endswith(":latest") or (":" not in image and "@" not in image):
        problems.append(f"{where}: image {image!r} is not pinned")
    return problems


def pod_security_problems(objects: list[dict[str, Any]]) -> list[str]:
    """What keeps a workload from the Pod Security `restricted` profile and our own rules."""
    problems: list[str] = []
    for obj in objects:
        spec = pod_spec(obj)
        if spec is None:
            continue
        where = object_id(obj)
        context = spec.get("securityContext") or {}
        if context.get("runAsNonRoot") is not True or context.get("runAsUser") == 0:
            problems.append(f"{where}: pod may run as root")
        if (context.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
            problems.append(f"{where}: no RuntimeDefault seccomp profile")
        if spec.get("automountServiceAccountToken") is not False:
            problems.append(f"{where}: mounts a service account token")
        if any("hostPath" in volume for volume in spec.get("volumes") or []):
            problems.append(f"{where}: hostPath volume")
        for container in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            problems += _container_problems(f"{where}/{container.get('name')}", container)
    return problems


def exposure_problems(objects: list[dict[str, Any]]) -> list[str]:
    """Services exposed outside the cluster, Ingresses without TLS, Secrets with values."""
    problems: list[str] = []
    for obj in objects:
        where, kind = object_id(obj), obj.get("kind")
        if kind == "Service" and (obj.get("spec") or {}).get("type") in {
            "LoadBalancer",
            "NodePort",
        }:
            problems.append(f"{where}: Service type {obj['spec']['type']}")
        if kind == "Ingress" and not (obj.get("spec") or {}).get("tls"):
            problems.append(f"{where}: Ingress without TLS")
        if kind == "Secret":
            # Secrets come from the environment or External Secrets, never from the render
            filled = sorted(k for k, v in secret_values(obj).items() if v not in PLACEHOLDERS)
            problems.append(f"{where}: Secret in the render (values for {filled})")
    return problems


# -- a container's environment, reproduced on this machine --------------------------------


def image_env(dockerfile: Path) -> dict[str, str]:
    """The ``ENV`` of the Dockerfile's last stage: what every container of the image starts with."""
    instructions = dockerfile_instructions(dockerfile)
    last_from = max(i for i, ins in enumerate(instructions) if ins.keyword == "FROM")
    env: dict[str, str] = {}
    for ins in instructions[last_from:]:
        if ins.keyword == "ENV":
            env.update(env_assignments(ins.args))
    return env


def container_env(
    container: dict[str, Any],
    config_maps: dict[str, dict[str, str]],
    secrets: dict[str, dict[str, str]],
) -> dict[str, str]:
    """The variables Kubernetes gives ``container``: ``envFrom`` ConfigMaps, then ``env``
    (literal values and ``secretKeyRef``s, resolved from ``secrets``; optional ones may miss)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(config_maps[source["configMapRef"]["name"]])
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        ref = item["valueFrom"]["secretKeyRef"]
        value = secrets.get(ref["name"], {}).get(ref["key"])
        if value is None and not ref.get("optional"):
            raise KeyError(f"{item['name']}: secret {ref['name']}/{ref['key']} not given")
        if value is not None:
            env[item["name"]] = value
    return env
