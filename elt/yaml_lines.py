"""Read a YAML file and remember the line of every key, so errors can point at it.

Booleans follow YAML 1.2 (only true/false), so keys such as ``on:`` stay strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

KeyPath = tuple[str | int, ...]
_BOOL_TAG = "tag:yaml.org,2002:bool"


class _Loader(yaml.SafeLoader):
    """SafeLoader whose booleans are only true/false (``on``, ``yes``, ``off`` stay strings)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


class YamlSyntaxError(ValueError):
    """The text is not valid YAML; ``line`` and ``column`` are 1-based."""

    def __init__(self, message: str, line: int | None, column: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


@dataclass
class YamlDocument:
    """The parsed data, the line of each key path, and keys given twice."""

    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)
    duplicates: list[tuple[KeyPath, int]] = field(default_factory=list)

    def line_of(self, path: KeyPath) -> int | None:
        """The line of ``path``, else of its closest parent that has one."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return None


def parse_yaml(text: str) -> YamlDocument:
    """Parse one YAML document, recording lines; raises :class:`YamlSyntaxError`."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as error:
        raise _syntax_error(error) from None
    except yaml.YAMLError as error:
        raise YamlSyntaxError(str(error), None, None) from None
    finally:
        loader.dispose()
    document = YamlDocument(data)
    if node is not None:
        document.lines[()] = node.start_mark.line + 1
        _record(node, (), document)
    return document


def _syntax_error(error: yaml.MarkedYAMLError) -> YamlSyntaxError:
    mark = error.problem_mark or error.context_mark
    problem = error.problem or error.context or "invalid YAML"
    if mark is None:
        return YamlSyntaxError(f"YAML syntax error: {problem}", None, None)
    line, column = mark.line + 1, mark.column + 1
    context = ""
    if error.context and error.context_mark and error.problem:
        start = error.context_mark
        context = f" ({error.context} at line {start.line + 1}, column {start.column + 1})"
    return YamlSyntaxError(
        f"YAML syntax error at line {line}, column {column}: {problem}{context}", line, column
    )


def _record(node: yaml.Node, path: KeyPath, document: YamlDocument) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = _key_of(key_node)
            child = (*path, key)
            if key in seen:
                document.duplicates.append((child, key_node.start_mark.line + 1))
            seen.add(key)
            document.lines[child] = key_node.start_mark.line + 1
            _record(value_node, child, document)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            document.lines[(*path, index)] = item.start_mark.line + 1
            _record(item, (*path, index), document)


def _key_of(node: yaml.Node) -> str:
    # Keys are matched against pydantic error locations, which are strings for dict keys.
    return str(node.value) if isinstance(node, yaml.ScalarNode) else "?"
