"""Failures become one clear message naming source, table and cause, with no secret in it."""

from __future__ import annotations

import psycopg2
import pyarrow as pa
import requests
import sqlalchemy.exc
from dlt.common.schema.exceptions import DataValidationError
from dlt.extract.exceptions import ResourceExtractionError

from elt.config import MissingEnvError
from ingestion.errors import IngestError, explain, scrub
from ingestion.runner import pipeline_name, pipelines_dir
from ingestion.sources.file_readers import MalformedFileError


def raised(exc: BaseException, cause: BaseException | None = None) -> BaseException:
    """``exc`` after being raised (from ``cause``), so its chain is set like in real life."""
    try:
        raise exc from cause
    except BaseException as caught:
        return caught


def extraction_error(resource: str, cause: BaseException) -> BaseException:
    return raised(ResourceExtractionError(resource, "gen", str(cause), "generator"), cause)


def test_scrub_removes_url_passwords_and_given_secrets():
    text = "postgresql://app:hunter2-pw@db:5432/shop refused token tok-123456"

    cleaned = scrub(text, ["tok-123456"])

    assert "hunter2-pw" not in cleaned
    assert "tok-123456" not in cleaned
    assert "postgresql://app:***@db:5432/shop" in cleaned


def test_wrong_password_names_source_table_and_variable_but_not_the_password():
    orig = psycopg2.OperationalError(
        'connection to server at "db" failed: FATAL:  password authentication failed for user '
        '"app"\npostgresql://app:hunter2-pw@db/shop'
    )
    wrapped = raised(sqlalchemy.exc.OperationalError("select 1", {}, orig), orig)

    error = explain(
        extraction_error("orders", wrapped),
        source="shop",
        secret_ref="env:SHOP_DB_URL",
        secrets=["hunter2-pw"],
    )

    message = str(error)
    assert isinstance(error, IngestError)
    assert message.startswith("ingest of source 'shop' failed at table/resource 'orders'")
    assert "refused the login" in message
    assert "password authentication failed" in message
    assert "env:SHOP_DB_URL" in message
    assert "hunter2-pw" not in message
    assert (error.source, error.table) == ("shop", "orders")


def test_contract_violation_names_table_column_and_value():
    violation = DataValidationError(
        "social", "tweets", "lang", "columns", "freeze", None, {}, {"id": 24, "lang": "en-GB"}
    )

    message = str(explain(raised(violation), source="social"))

    assert "table 'tweets', column 'lang'" in message
    assert "a new column is not allowed (contract mode 'freeze')" in message
    assert "(offending value: 'en-GB')" in message


def test_contract_violation_on_arrow_data_quotes_the_first_value():
    batch = pa.table({"id": [1, 2], "coupon": [None, "SPRING24"]})
    violation = DataValidationError(
        "shop", "orders", "coupon", "columns", "freeze", None, {}, [batch]
    )

    assert "(offending value: 'SPRING24')" in str(explain(raised(violation), source="shop"))


def test_a_new_data_type_quotes_the_value_of_the_base_column():
    violation = DataValidationError(
        "shop", "orders", "amount__v_text", "data_type", "freeze", None, {}, {"amount": "n/a"}
    )

    message = str(explain(raised(violation), source="shop"))

    assert "column 'amount__v_text': a new data type is not allowed" in message
    assert "(offending value: 'n/a')" in message


def test_malformed_file_names_the_file():
    bad = MalformedFileError("file:///landing/supplies/b.csv", "Expected 3 fields in line 4")

    message = str(explain(extraction_error("supplies", bad), source="landing"))

    assert "at table/resource 'supplies'" in message
    assert "malformed file file:///landing/supplies/b.csv: Expected 3 fields in line 4" in message


def test_http_errors_show_status_and_url_without_the_query_string():
    response = requests.Response()
    response.status_code = 401
    response.reason = "Unauthorized"
    response.url = "http://127.0.0.1:9/v1/tweets?api_key=key-123456&page=1"
    http_error = requests.HTTPError("401 Client Error", response=response)

    message = str(
        explain(extraction_error("tweets", http_error), source="social", secret_ref="env:API_TOKEN")
    )

    assert "HTTP 401 Unauthorized from http://127.0.0.1:9/v1/tweets" in message
    assert "Check the API token or credentials (env:API_TOKEN)" in message
    assert "key-123456" not in message


def test_missing_environment_variable_is_named():
    message = str(explain(raised(MissingEnvError("SHOP_DB_URL")), source="shop"))
    assert "environment variable SHOP_DB_URL is not set" in message


def test_unknown_failures_keep_the_root_cause():
    root = raised(ValueError("something odd happened"))
    message = str(explain(extraction_error("orders", root), source="shop"))
    assert "ValueError: something odd happened" in message


def test_pipeline_names_and_folder(monkeypatch, tmp_path):
    from elt.config import SqlDatabaseSource

    source = SqlDatabaseSource.model_validate(
        {"name": "shop", "type": "sql_database", "credentials": "env:X", "tables": {"t": {}}}
    )
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path))

    assert pipeline_name(source) == "elt_shop"
    assert pipelines_dir() == tmp_path / "pipelines"


class PanicException(BaseException):
    """pyo3's panic, as connectorx raises it when the source drops the connection mid-read."""


def test_a_connectorx_panic_on_a_lost_connection_is_a_connection_error():
    panic = raised(PanicException("db error: Connection reset by peer (os error 104)"))

    error = explain(extraction_error("orders", panic), source="shop", secret_ref="env:SHOP_URL")

    assert isinstance(error, IngestError)
    assert "cannot connect to the source database" in str(error)
    assert "Connection reset by peer" in str(error)
    assert "env:SHOP_URL" in str(error)


def test_an_adbc_stream_cut_by_the_source_is_a_connection_error():
    # what pyarrow raises reading ADBC's batches after the server terminated the backend
    cut = raised(
        OSError(
            " Execution error [PGRES_FATAL_ERROR]: FATAL:  terminating connection due to"
            " administrator command\n"
        )
    )

    error = explain(extraction_error("orders", cut), source="shop", secret_ref="env:SHOP_URL")

    assert str(error) == (
        "ingest of source 'shop' failed at table/resource 'orders': cannot connect to the"
        " source database: Execution error [PGRES_FATAL_ERROR]: FATAL:"
        " terminating connection due to administrator command. Check that the database is"
        " running and the source URL (env:SHOP_URL) is right"
    )


def test_other_os_errors_while_extracting_keep_their_own_message():
    error = explain(
        extraction_error("orders", raised(OSError("No space left on device"))), source="shop"
    )

    assert "cannot connect" not in str(error)
    assert "No space left on device" in str(error)


class PipelineStepFailed(Exception):
    """dlt's step failure, as far as :func:`explain` looks at it (its name and step)."""

    def __init__(self, step: str, cause: BaseException) -> None:
        super().__init__(f"Pipeline execution failed at stage {step}")
        self.step = step
        self.exception = cause


class OperationalError(Exception):
    """adbc_driver_manager's OperationalError (the class name is what counts)."""


def test_rows_the_warehouse_refuses_at_load_do_not_blame_the_warehouse():
    # a source column retyped bigint -> text: ADBC's Parquet COPY into the bigint column
    copy = raised(
        OperationalError(
            "IO: [libpq] Failed to execute COPY statement: PGRES_FATAL_ERROR ERROR:  insufficient"
            " data left in message\nCONTEXT:  COPY gauges, line 1, column reading\n."
            " SQLSTATE: 08P01"
        )
    )
    error = explain(raised(PipelineStepFailed("load", copy)), source="drift")

    assert "the warehouse refused the rows" in str(error)
    assert "Check that the warehouse is running" not in str(error)
    assert "--full-refresh" in str(error)


def test_a_warehouse_gone_at_load_is_still_named():
    gone = raised(OperationalError("could not connect to server: Connection refused"))
    error = explain(raised(PipelineStepFailed("load", gone)), source="drift")

    assert "cannot use the warehouse" in str(error)
