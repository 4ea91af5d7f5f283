"""Checks for a team's repository, run by pre-commit (``.pre-commit-config.yaml``), offline.

    python -m elt.repo_checks models [PROJECT_DIR …]   every model documented and key-tested
    python -m elt.repo_checks secrets FILE …            no literal secret in committed files

``models`` reads the projects' YAML property files (no dbt run, no warehouse): each SQL model
needs an entry in a ``.yml`` file of the project with a ``description``, and at least one
column with both a ``unique`` and a ``not_null`` test (its key). A model without a single-
column key says so with ``meta: {key_test: false}``. Each problem is one line naming the file.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

_KEY_TESTS = {"unique", "not_null"}
# literal credentials; env references (env_var(...), env:NAME, ${VAR}) are what should be there
_URL_PASSWORD = re.compile(r"postgres(?:ql)?(?:\+\w+)?://[^\s:/@]+:(?P<value>[^\s@/]+)@")
_SECRETS = (
    (re.compile(r"-----BEGIN (?:RSA |EC |OPENSSH |DSA )?PRIVATE KEY-----"), "a private key"),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), "an AWS access key id"),
    (re.compile(r"\bxox[abprs]-[0-9A-Za-z-]{10,}"), "a Slack token"),
    (
        re.compile(
            r"^[ \t]*(?:password|passwd|secret|token|api_key)[ \t]*:[ \t]*"
            r"['\"]?(?P<value>[^\s'\"#]+)",
            re.IGNORECASE | re.MULTILINE,
        ),
        "a literal password/secret/token value",
    ),
    (_URL_PASSWORD, "a URL with a password"),
)
# documentation placeholders and references, not secrets
_PLACEHOLDERS = {"password", "pass", "secret", "changeme", "...", "…", "***", "xxx", "token"}
_REFERENCES = ("env_var(", "env:", "${", "{{", "<", "$")


def _is_secret(value: str | None) -> bool:
    if value is None:
        return True  # a pattern without a value part: the match itself is the secret
    return value.lower() not in _PLACEHOLDERS and not value.startswith(_REFERENCES)


def _model_paths(project: Path) -> list[Path]:
    data = yaml.safe_load((project / "dbt_project.yml").read_text()) or {}
    return [project / folder for folder in data.get("model-paths", ["models"])]


def _properties(folders: Iterable[Path]) -> Iterator[tuple[Path, dict[str, Any]]]:
    for folder in folders:
        for path in sorted([*folder.rglob("*.yml"), *folder.rglob("*.yaml")]):
            document = yaml.safe_load(path.read_text()) or {}
            for model in document.get("models") or []:
                if isinstance(model, dict) and model.get("name"):
                    yield path, model


def _tests(column: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    for test in [*(column.get("data_tests") or []), *(column.get("tests") or [])]:
        names.add(test if isinstance(test, str) else next(iter(test), ""))
    return names


def _has_key_test(model: dict[str, Any]) -> bool:
    if ((model.get("config") or {}).get("meta") or model.get("meta") or {}).get(
        "key_test"
    ) is False:
        return True
    return any(_tests(column) >= _KEY_TESTS for column in model.get("columns") or [])


def model_problems(project: Path) -> list[str]:
    """One line per model of ``project`` without a described, key-tested YAML entry."""
    folders = _model_paths(project)
    described = {model["name"]: (path, model) for path, model in _properties(folders)}
    problems = []
    for folder in folders:
        for sql in sorted(folder.rglob("*.sql")):
            name = sql.stem
            where = sql.relative_to(project.parent) if project.parent in sql.parents else sql
            if name not in described:
                problems.append(f"{where}: model {name} has no entry in a .yml file beside it")
                continue
            path, model = described[name]
            if not str(model.get("description") or "").strip():
                problems.append(f"{path}: model {name} has no description")
            if not _has_key_test(model):
                problems.append(
                    f"{path}: model {name} has no column with both unique and not_null tests"
                    " (its key); or set meta: {key_test: false}"
                )
    return problems


def secret_problems(files: Iterable[Path]) -> list[str]:
    """One line per literal secret found in ``files`` (line number, kind; never the value)."""
    problems = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary or unreadable: not a config file
        found = []
        for pattern, kind in _SECRETS:
            for match in pattern.finditer(text):
                if _is_secret(match.groupdict().get("value")):
                    found.append((text.count("\n", 0, match.start()) + 1, kind))
        problems += [
            f"{path}:{line}: {kind}; read it from the environment instead"
            for line, kind in sorted(found)
        ]
    return problems


def main(argv: list[str] | None = None) -> int:
    """``models [DIR…]`` or ``secrets FILE…``; prints the problems, exits 1 when any."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] not in ("models", "secrets"):
        print("usage: python -m elt.repo_checks models [PROJECT_DIR…] | secrets FILE…")
        return 2
    if args[0] == "models":
        problems = [p for d in (args[1:] or ["dbt_project"]) for p in model_problems(Path(d))]
    else:
        problems = secret_problems(Path(name) for name in args[1:])
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
