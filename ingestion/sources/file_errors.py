"""The error of a landing file that cannot be read: it names the file and the line."""

from __future__ import annotations


class MalformedFileError(ValueError):
    """A file could not be parsed; the message names the file and the line when known."""

    def __init__(self, file_url: str, problem: str) -> None:
        super().__init__(f"malformed file {file_url}: {problem}")
        self.file_url = file_url
        self.problem = problem


def first_line(exc: BaseException) -> str:
    """The first line of an exception's text (its type's name when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
