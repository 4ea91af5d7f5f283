"""``pipelines.yml``: load it into typed models, or list every problem in it.

    config = load()                      # ProjectConfig, or ConfigError listing every problem
    problems = validate_file("x.yml")    # list[Problem], never raises for config problems

The models live in :mod:`elt.config_sources` and :mod:`elt.config_pipelines`; value types
(env references, durations, schedules) in :mod:`elt.config_values`. Import them from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from elt import paths
from elt.config_checks import cross_checks
from elt.config_pipelines import (
    DbtSpec,
    Export,
    Limits,
    Notify,
    Pipeline,
    ProjectConfig,
    Quality,
    Rule,
    UnknownPipelineError,
)
from elt.config_problems import ConfigError, Problem, problems_from_validation
from elt.config_sources import (
    DEFAULT_POOL_BY_TYPE,
    DEFAULT_POOLS,
    SOURCE_TYPES,
    DltSourceRef,
    FileSet,
    FilesystemSource,
    Paginator,
    RestApiSource,
    RestAuth,
    RestIncremental,
    RestResource,
    Retries,
    Source,
    SqlDatabaseSource,
    SqlTable,
)
from elt.config_values import (
    Invalid,
    MissingEnvError,
    env_ref_name,
    is_env_ref,
    parse_duration,
    resolve_env,
)
from elt.yaml_lines import YamlSyntaxError, parse_yaml

__all__ = [
    "DEFAULT_POOLS",
    "DEFAULT_POOL_BY_TYPE",
    "SOURCE_TYPES",
    "ConfigError",
    "DbtSpec",
    "DltSourceRef",
    "Export",
    "FileSet",
    "FilesystemSource",
    "Invalid",
    "Limits",
    "MissingEnvError",
    "Notify",
    "Paginator",
    "Pipeline",
    "Problem",
    "ProjectConfig",
    "Quality",
    "RestApiSource",
    "RestAuth",
    "RestIncremental",
    "RestResource",
    "Retries",
    "Rule",
    "Source",
    "SqlDatabaseSource",
    "SqlTable",
    "UnknownPipelineError",
    "env_refs",
    "is_env_ref",
    "load",
    "parse_duration",
    "resolve_env",
    "validate_file",
]

_EXAMPLE_HINT = "start from the example pipelines.yml in the project root"


def load(path: Path | str | None = None, *, check_env: bool = False) -> ProjectConfig:
    """Load and validate ``pipelines.yml`` (default :func:`elt.paths.config_file`).

    Raises :class:`ConfigError` listing every problem; with ``check_env`` a required
    ``env:NAME`` whose variable is unset is a problem too.
    """
    problems, config = _check(path, check_env=check_env)
    if problems or config is None:
        raise ConfigError(problems)
    return config


def validate_file(path: Path | str | None = None, *, check_env: bool = True) -> list[Problem]:
    """Every problem in the file (empty when it is valid); never raises for config problems."""
    problems, _ = _check(path, check_env=check_env)
    return problems


def env_refs(obj: Any, *, required_only: bool = False) -> list[str]:
    """Names of the environment variables referenced anywhere inside ``obj`` (a model, dict,
    list or string), sorted; ``required_only`` leaves out optional ``env:NAME?`` ones."""
    names: set[str] = set()
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, BaseModel):
            stack.extend(getattr(item, field) for field in type(item).model_fields)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif is_env_ref(item):
            name, optional = env_ref_name(item)
            if not (optional and required_only):
                names.add(name)
    return sorted(names)


def _check(
    path: Path | str | None, *, check_env: bool
) -> tuple[list[Problem], ProjectConfig | None]:
    file_path = Path(path) if path is not None else paths.config_file()
    shown = _display(file_path)
    try:
        text = file_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return [Problem(shown, None, "", "file not found", _not_found_hint(path))], None
    except (OSError, UnicodeDecodeError) as error:
        return [Problem(shown, None, "", f"cannot read the file: {error}")], None
    try:
        document = parse_yaml(text)
    except YamlSyntaxError as error:
        hint = "check the indentation and quoting on that line and the one before"
        return [Problem(shown, error.line, "", error.message, hint)], None
    if document.data is None:
        return [Problem(shown, None, "", "the file is empty", _EXAMPLE_HINT)], None
    if not isinstance(document.data, dict):
        message = "the top level must be a mapping with sources:, pipelines: and pools:"
        return [Problem(shown, 1, "", message, _EXAMPLE_HINT)], None
    problems = cross_checks(document, shown, check_env=check_env)
    config = None
    try:
        config = ProjectConfig.model_validate({**document.data, "path": file_path})
    except ValidationError as error:
        problems += problems_from_validation(error, document, shown, ProjectConfig)
    return _unique_sorted(problems), config


def _unique_sorted(problems: list[Problem]) -> list[Problem]:
    # The model and the cross checks can both see the same mistake (e.g. a parent cycle).
    unique = {(problem.key_path, problem.message): problem for problem in problems}
    return sorted(unique.values(), key=lambda problem: (problem.line or 0, problem.key_path))


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _not_found_hint(path: Path | str | None) -> str:
    if path is None:
        return "create pipelines.yml in the project root, or set ELT_CONFIG to its path"
    return "check the path given with --file"
