"""Turn whatever dlt, a driver or an HTTP client raised into one clear, secret-free message.

The message names the source, the table/resource/file at fault, the step (extract, normalize,
load) and the cause, and says what to do. Secrets are scrubbed: URL passwords, the source's
resolved tokens and passwords, and every secret-looking environment value.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from elt.redact import redact

if TYPE_CHECKING:
    from ingestion.runner import IngestResult

_MAX_CAUSE_CHARS = 600
_DEPTH_LIMIT = 25
_WAREHOUSE_STEPS = ("sync", "load")
_LOAD_HINT = (
    "The warehouse refused the rows: fix the cause, or rebuild the source's raw tables with "
    "`elt ingest {source} --full-refresh`"
)


class IngestError(RuntimeError):
    """An ingest failed; ``str()`` is safe to show (no secrets) and says what to do."""

    def __init__(
        self,
        message: str,
        *,
        source: str,
        table: str | None = None,
        step: str | None = None,
        result: IngestResult | None = None,
    ) -> None:
        super().__init__(message)
        self.source = source
        self.table = table
        self.step = step
        self.result = result


@dataclass
class _Diagnosis:
    cause: str
    hint: str = ""
    table: str | None = None


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without URL passwords, the given secret values or secret env values."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return redact(text)


def explain(
    exc: BaseException,
    *,
    source: str,
    secret_ref: str | None = None,
    secrets: Iterable[str] = (),
) -> IngestError:
    """The :class:`IngestError` describing ``exc`` (never containing a secret)."""
    chain = list(exception_chain(exc))
    step = next((getattr(e, "step", None) for e in chain if _is_step_failure(e)), None)
    diagnosis = _diagnose(chain, step, f" ({secret_ref})" if secret_ref else "")
    table = diagnosis.table or _table_in_chain(chain)
    where = f" at table/resource '{table}'" if table else ""
    during = f" during {step}" if step else ""
    message = f"ingest of source '{source}' failed{where}{during}: {diagnosis.cause}"
    hint = diagnosis.hint or (_LOAD_HINT.format(source=source) if step == "load" else "")
    if hint:
        message = f"{message.rstrip('.')}. {hint}"
    return IngestError(scrub(message, secrets), source=source, table=table, step=step)


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything it wraps (dlt's ``exception`` attributes, causes, contexts)."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending and len(seen) < _DEPTH_LIMIT:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for attr in ("exception", "client_exception", "orig", "__cause__", "__context__"):
            inner = getattr(current, attr, None)
            if isinstance(inner, BaseException):
                pending.append(inner)


def _is_step_failure(exc: BaseException) -> bool:
    return type(exc).__name__ == "PipelineStepFailed"


def _diagnose(chain: list[BaseException], step: str | None, ref: str) -> _Diagnosis:
    for diagnose in (_contract_violation, _malformed_file, _missing_env, _missing_table):
        found = diagnose(chain)
        if found:
            return found
    found = _http_failure(chain, ref) or _connection_failure(chain, step, ref)
    return found or _Diagnosis(cause=_root_cause(chain))


def _find(chain: list[BaseException], *names: str) -> Any:
    return next((e for e in chain if type(e).__name__ in names), None)


def _contract_violation(chain: list[BaseException]) -> _Diagnosis | None:
    exc = _find(chain, "DataValidationError")
    if exc is None:
        return None
    entity = {"tables": "a new table", "columns": "a new column", "data_type": "a new data type"}
    what = entity.get(exc.schema_entity, exc.schema_entity)
    column = f", column '{exc.column_name}'" if exc.column_name else ""
    value = _offending_value(exc)
    cause = (
        f"schema contract violated in table '{exc.table_name}'{column}: "
        f"{what} is not allowed (contract mode '{exc.contract_mode}'){value}"
    )
    hint = "Fix the source data, or change the source's contract (evolve, discard_row, ...)"
    return _Diagnosis(cause=cause, hint=hint, table=exc.table_name)


def _offending_value(exc: Any) -> str:
    item = exc.data_item
    if isinstance(item, list):
        item = item[0] if item else None
    if not exc.column_name or item is None:
        return ""
    # a new data type arrives as a variant column, e.g. amount__v_text
    names = (exc.column_name, exc.column_name.split("__v_")[0])
    value = next((v for v in (_value_in(item, name) for name in names) if v is not None), None)
    return f" (offending value: {value!r})" if value is not None else ""


def _value_in(item: Any, column: str) -> Any:
    """The column's value in a row (dict), or its first non-null value in an Arrow batch."""
    if hasattr(item, "column_names"):
        if column not in item.column_names:
            return None
        values = item.column(column).drop_null()
        return values[0].as_py() if len(values) else None
    return item.get(column) if hasattr(item, "get") else None


def _malformed_file(chain: list[BaseException]) -> _Diagnosis | None:
    exc = _find(chain, "MalformedFileError")
    if exc is None:
        return None
    return _Diagnosis(cause=str(exc), hint="Fix or remove the file, then run again")


def _missing_env(chain: list[BaseException]) -> _Diagnosis | None:
    exc = _find(chain, "MissingEnvError")
    return _Diagnosis(cause=str(exc)) if exc is not None else None


def _missing_table(chain: list[BaseException]) -> _Diagnosis | None:
    exc = _find(chain, "NoSuchTableError")
    if exc is None:
        return None
    name = str(exc.args[0]) if exc.args else "?"
    return _Diagnosis(
        cause=f"table '{name}' does not exist in the source database",
        hint="Check the table names (and schema) of the source in pipelines.yml",
        table=name.split(".")[-1],
    )


def _http_failure(chain: list[BaseException], ref: str) -> _Diagnosis | None:
    exc = _find(chain, "HTTPError")
    response = getattr(exc, "response", None)
    if exc is not None and response is not None:
        url = _without_query(str(response.url))
        cause = f"HTTP {response.status_code} {response.reason} from {url}"
        hint = {
            401: f"Check the API token or credentials{ref}",
            403: "The credentials lack permission for this endpoint",
            404: "Check base_url and the resource path",
        }.get(response.status_code, "")
        return _Diagnosis(cause=cause, hint=hint)
    exc = _find(chain, "ConnectionError", "ConnectTimeout", "ReadTimeout")
    if exc is not None and type(exc).__module__.startswith("requests"):
        request = getattr(exc, "request", None)
        url = _without_query(str(request.url)) if request is not None else "the API"
        return _Diagnosis(
            cause=f"cannot reach {url}: {type(exc).__name__}",
            hint="Check that the API is up and base_url is right",
        )
    return None


def _connection_failure(
    chain: list[BaseException], step: str | None, ref: str
) -> _Diagnosis | None:
    messages = [_first_line(e) for e in chain if type(e).__name__ == "OperationalError"]
    messages += [" ".join(str(e).split()) for e in chain if _is_reader_connect_error(e)]
    if not messages:
        return None
    detail = messages[-1]
    if step in _WAREHOUSE_STEPS and _rejected_rows(detail):
        return _Diagnosis(
            cause=f"the warehouse refused the rows: {detail}",
            hint="The source's data no longer fits the raw table (a column's type changed at "
            "the source?): fix the source, or rebuild the table with elt ingest "
            "SOURCE --full-refresh",
        )
    if step in _WAREHOUSE_STEPS:
        return _Diagnosis(
            cause=f"cannot use the warehouse: {detail}",
            hint="Check that the warehouse is running (elt status) and its URL",
        )
    lowered = detail.lower()
    if "password" in lowered or "authentication" in lowered:
        return _Diagnosis(
            cause=f"the source database refused the login: {detail}",
            hint=f"Check the user and password in the source URL{ref}",
        )
    return _Diagnosis(
        cause=f"cannot connect to the source database: {detail}",
        hint=f"Check that the database is running and the source URL{ref} is right",
    )


def _rejected_rows(detail: str) -> bool:
    """A statement that reached the warehouse and failed on the data (a COPY of rows, or a
    data/constraint error), as opposed to a warehouse that cannot be reached. ADBC reports a
    Parquet COPY whose columns do not match the table as SQLSTATE 08P01 (a protocol error):
    the SQLSTATE class alone would blame the connection."""
    lowered = detail.lower()
    state = re.search(r"sqlstate:? ?([0-9a-z]{5})", lowered)
    return "failed to execute copy" in lowered or bool(state and state[1][:2] in ("22", "23", "42"))


def _is_reader_connect_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    # connectorx reports a failed connect as RuntimeError, a connection lost mid-read as a
    # Rust panic (pyo3's PanicException); ADBC's stream of batches, read through pyarrow,
    # as an OSError quoting libpq's status
    connectorx_kind = type(exc) is RuntimeError or type(exc).__name__ == "PanicException"
    adbc_stream_kind = type(exc) is OSError and ("pgres_" in text or "libpq" in text)
    lost = "connection" in text or "authentication" in text
    return (connectorx_kind or adbc_stream_kind) and lost


def _table_in_chain(chain: list[BaseException]) -> str | None:
    for exc in chain:
        pipe = getattr(exc, "pipe_name", None)
        if pipe:
            return str(pipe).removesuffix("_files")
        job_id = getattr(exc, "job_id", None)
        if job_id:
            return str(job_id).split(".")[0]
    return None


def _root_cause(chain: list[BaseException]) -> str:
    root = chain[-1]
    for exc in reversed(chain):
        if str(exc).strip():
            root = exc
            break
    text = " ".join(str(root).split())
    if len(text) > _MAX_CAUSE_CHARS:
        text = text[:_MAX_CAUSE_CHARS] + "…"
    return f"{type(root).__name__}: {text}" if text else type(root).__name__


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return re.sub(r"\s+", " ", lines[0]) if lines else type(exc).__name__


def _without_query(url: str) -> str:
    return url.split("?", 1)[0]


class OneLineLogs(logging.Filter):
    """Log records as one line without traceback (the CLI without ``--verbose``).

    dlt's own error records are dropped: they repeat, with 70-140 lines of traceback, the
    failure the raised :class:`IngestError` states in one line.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """False for dlt's errors; every other record cut to its first line."""
        if record.name == "dlt" and record.levelno >= logging.ERROR:
            return False
        message = record.getMessage().strip()
        record.msg, record.args = (message.splitlines()[0] if message else ""), None
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


def one_line_logs() -> None:
    """Put :class:`OneLineLogs` on dlt's logger (its records do not propagate) and on the
    root logger's handlers; idempotent."""
    targets: list[logging.Filterer] = [logging.getLogger("dlt"), *logging.getLogger().handlers]
    for target in targets:
        if not any(isinstance(f, OneLineLogs) for f in target.filters):
            target.addFilter(OneLineLogs())
