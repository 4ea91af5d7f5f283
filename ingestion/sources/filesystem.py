"""A ``filesystem`` source from pipelines.yml → dlt ``filesystem`` listings piped into readers.

Each file set lists its files incrementally on ``modification_date``, so a file is read once
and a later run picks up only new (or rewritten) files. Local folders may be given as plain
paths (relative ones are taken from the project folder), ``file://`` or ``s3://`` URLs.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import dlt
from dlt.common.configuration.specs import AwsCredentials
from dlt.extract import DltResource
from dlt.sources.filesystem import filesystem

from elt import paths
from elt.config import FileSet, FilesystemSource, resolve_env
from ingestion.sources.common import BuiltSource, as_source, delete_hint
from ingestion.sources.file_readers import file_reader

# standard AWS variables, read when the bucket is on S3 (or an S3-compatible endpoint)
_AWS_ENV = {
    "aws_access_key_id": "AWS_ACCESS_KEY_ID",
    "aws_secret_access_key": "AWS_SECRET_ACCESS_KEY",
    "aws_session_token": "AWS_SESSION_TOKEN",
    "region_name": "AWS_DEFAULT_REGION",
}


def filesystem_source(config: FilesystemSource) -> BuiltSource:
    """One resource per file set, each loading only files it has not loaded before."""
    bucket_url = bucket_url_of(config)
    credentials = s3_credentials(config, bucket_url)
    resources = [
        file_set_resource(name, file_set, bucket_url, credentials)
        for name, file_set in config.files.items()
    ]
    secret = credentials.aws_secret_access_key if credentials else None
    return BuiltSource(
        source=as_source(config.name, resources, config.contract),
        loader_file_format=_file_format(config),
        secrets=[secret] if secret else [],
    )


def file_set_resource(
    name: str,
    file_set: FileSet,
    bucket_url: str,
    credentials: AwsCredentials | None = None,
) -> DltResource:
    """Files matching the glob (new ones only), read and loaded into table ``name``."""
    listing = filesystem(
        bucket_url=bucket_url,
        credentials=credentials if credentials is not None else dlt.secrets.value,
        file_glob=file_set.glob,
        incremental=dlt.sources.incremental("modification_date"),
    ).with_name(f"{name}_files")  # the listing keeps its own cursor per file set
    reader = file_reader(file_set.format, table=name, primary_key=file_set.primary_key or ())
    resource = (listing | reader).with_name(name)
    resource.apply_hints(
        write_disposition=file_set.disposition,
        primary_key=list(file_set.primary_key) if file_set.primary_key else None,
        columns=delete_hint(file_set.hard_delete),
    )
    return resource


def bucket_url_of(config: FilesystemSource) -> str:
    """The bucket URL; a local path becomes an absolute ``file://`` URL."""
    url = resolve_env(config.bucket_url) or ""
    if "://" in url:
        return url
    path = Path(url).expanduser()
    if not path.is_absolute():
        path = paths.project_root() / path
    return path.resolve().as_uri()


def s3_credentials(config: FilesystemSource, bucket_url: str) -> AwsCredentials | None:
    """AWS credentials for an ``s3://`` bucket from the standard AWS variables and the
    configured endpoint; None elsewhere (and when nothing is set, so dlt's own lookup runs)."""
    if urlsplit(bucket_url).scheme != "s3":
        return None
    values = {field: os.environ[env] for field, env in _AWS_ENV.items() if os.environ.get(env)}
    endpoint = resolve_env(config.endpoint_url) if config.endpoint_url else None
    if endpoint:
        values["endpoint_url"] = endpoint
    return AwsCredentials(**values) if values else None


def _file_format(config: FilesystemSource) -> str | None:
    # Parquet files and (most) CSV files arrive as Arrow batches: load them as Parquet too
    formats = {file_set.format for file_set in config.files.values()}
    return "parquet" if formats <= {"parquet", "csv"} else None
