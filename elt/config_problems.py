"""Problems found in ``pipelines.yml``, and the translation of pydantic errors into them."""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from elt.config_sources import SOURCE_TYPES
from elt.config_values import Invalid, did_you_mean
from elt.yaml_lines import KeyPath, YamlDocument

# Values under these keys are never echoed back, even in a type error.
_SECRET_KEYS = {"credentials", "token", "api_key", "password", "urls", "base_url", "bucket_url"}

_TYPE_MESSAGES = {
    "int": "expected a whole number",
    "float": "expected a number",
    "bool": "expected true or false",
    "string": "expected text",
    "dict": "expected a mapping (key: value lines)",
    "model": "expected a mapping (key: value lines)",
    "list": "expected a list",
    "date": "expected a date like 2026-01-01",
    "timedelta": "expected a duration like 5m, 1h or 2h30m",
}
_BOUNDS = {
    "greater_than_equal": ("ge", "at least"),
    "less_than_equal": ("le", "at most"),
    "greater_than": ("gt", "more than"),
    "less_than": ("lt", "less than"),
}


@dataclass
class Problem:
    """One problem: where it is (file, line, key path), what is wrong and what to do."""

    file: str
    line: int | None
    key_path: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        key = f" {self.key_path}:" if self.key_path else ""
        hint = f" (hint: {self.hint})" if self.hint else ""
        return f"{where}:{key} {self.message}{hint}"


class ConfigError(Exception):
    """``pipelines.yml`` has problems; ``problems`` lists every one of them."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(problem) for problem in problems))
        self.problems = problems


def format_key_path(path: KeyPath) -> str:
    """``("sources", "shop", "tables")`` → ``sources.shop.tables``; list items as ``[i]``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def problems_from_validation(
    error: ValidationError, document: YamlDocument, file: str, root: type[BaseModel]
) -> list[Problem]:
    """Translate each pydantic error into a :class:`Problem` with its line and key path."""
    problems: list[Problem] = []
    for detail in error.errors(include_url=False):
        problem = _problem(dict(detail), document, file, root)
        if problem not in problems:
            problems.append(problem)
    return problems


def _problem(
    detail: dict[str, Any], document: YamlDocument, file: str, root: type[BaseModel]
) -> Problem:
    loc = tuple(part for part in detail["loc"] if part != "[key]")
    path = _data_path(loc, document.data)
    cause = (detail.get("ctx") or {}).get("error")
    if isinstance(cause, Invalid) and cause.key:
        path = (*path, *cause.key.split("."))
    if detail["type"].startswith("union_tag"):
        path = (*path, "type")
    message, hint = _describe(detail, loc, path, root)
    return Problem(file, document.line_of(path), format_key_path(path), message, hint)


def _data_path(loc: tuple[Any, ...], data: Any) -> KeyPath:
    """The key path in the YAML data: drops union tags pydantic adds to locations."""
    path: list[str | int] = []
    current = data
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if _has(current, part):
            current = current[part]
        elif not last:
            continue
        path.append(part)
    return tuple(path)


def _has(data: Any, part: Any) -> bool:
    if isinstance(data, dict):
        return part in data
    return isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)


def _describe(
    detail: dict[str, Any], loc: tuple[Any, ...], path: KeyPath, root: type[BaseModel]
) -> tuple[str, str]:
    kind: str = detail["type"]
    ctx = detail.get("ctx") or {}
    key = str(path[-1]) if path else ""
    if kind == "extra_forbidden":
        allowed = sorted(allowed_keys(root, loc[:-1]))
        hint = did_you_mean(key, allowed) or (
            f"allowed keys: {', '.join(allowed)}" if allowed else ""
        )
        return f"unknown key '{key}'", hint
    if kind == "missing":
        return f"missing required key '{key}'", ""
    if kind == "literal_error":
        return _literal(detail, key)
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        return _union_tag(ctx, loc)
    if kind in ("value_error", "assertion_error"):
        return _value_error(ctx.get("error"), detail)
    return _generic(kind, ctx, detail, key)


def _literal(detail: dict[str, Any], key: str) -> tuple[str, str]:
    expected = str(detail["ctx"]["expected"])
    given = detail.get("input")
    if not isinstance(given, str | int | float) or key in _SECRET_KEYS:
        return f"must be one of {expected}", ""
    choices = [part.strip(" '") for part in expected.replace(" or ", ", ").split(",")]
    hint = did_you_mean(str(given), choices)
    return f"{given!r} is not allowed: use one of {expected}", hint


def _union_tag(ctx: dict[str, Any], loc: tuple[Any, ...]) -> tuple[str, str]:
    section = "source " if loc and loc[0] == "sources" else ""
    valid = ctx.get("expected_tags") or ", ".join(SOURCE_TYPES)
    if "tag" not in ctx:
        return "missing required key 'type'", f"set type: to one of {valid}"
    tag = ctx["tag"]
    hint = did_you_mean(tag, [t.strip(" '") for t in str(valid).split(",")])
    return f"unknown {section}type '{tag}': valid types are {valid}", hint


def _value_error(cause: Any, detail: dict[str, Any]) -> tuple[str, str]:
    if isinstance(cause, Invalid):
        return cause.message, cause.hint
    return str(cause or detail["msg"]).removeprefix("Value error, "), ""


def _generic(kind: str, ctx: dict[str, Any], detail: dict[str, Any], key: str) -> tuple[str, str]:
    if kind in _BOUNDS:
        name, words = _BOUNDS[kind]
        return f"must be {words} {ctx.get(name)}", ""
    if kind == "too_short":
        return "must not be empty", "add at least one entry"
    family = kind.split("_")[0]
    if family in _TYPE_MESSAGES:
        return f"{_TYPE_MESSAGES[family]}{_got(detail.get('input'), key)}", ""
    return str(detail["msg"]).replace("Input should", "should"), ""


def _got(value: Any, key: str) -> str:
    if isinstance(value, dict):
        return " (got a mapping)"
    if isinstance(value, list):
        return " (got a list)"
    if value is None:
        return " (got nothing)"
    if key in _SECRET_KEYS or len(str(value)) > 40:
        kind = "number" if isinstance(value, int | float) else "text"
        return f" (got {'true/false' if isinstance(value, bool) else kind})"
    return f" (got {value!r})"


# --- the model at a location, for "did you mean" on unknown keys --------------------------


def allowed_keys(root: type[BaseModel], loc: tuple[Any, ...]) -> set[str]:
    """The keys accepted by the model found at ``loc`` (empty when not a model)."""
    current: Any = root
    for part in loc:
        current = _step(_unwrap(current), part)
        if current is None:
            return set()
    model = _unwrap(current)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return set()
    return {field.alias or name for name, field in model.model_fields.items()} - {"name", "path"}


def _unwrap(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    if _is_union(tp):
        members = [arg for arg in typing.get_args(tp) if arg is not type(None)]
        if len(members) == 1:
            return _unwrap(members[0])
    return tp


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _step(tp: Any, part: Any) -> Any:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        for name, field in tp.model_fields.items():
            if part in (name, field.alias):
                return field.annotation
        return None
    origin = typing.get_origin(tp)
    if origin is dict:
        return typing.get_args(tp)[1]
    if origin is list:
        return typing.get_args(tp)[0]
    if _is_union(tp):
        return _union_member(tp, part)
    return None


def _union_member(tp: Any, tag: Any) -> Any:
    for member in typing.get_args(tp):
        field = getattr(member, "model_fields", {}).get("type")
        if field is not None and tag in typing.get_args(field.annotation):
            return member
    return None
