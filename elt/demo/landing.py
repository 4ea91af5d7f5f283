"""The demo's file source: supplier files dropped into a landing zone (local folder or S3)."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit


class LandingError(RuntimeError):
    """The landing zone could not be written."""


def write_landing(
    csv_dir: Path,
    bucket_url: str,
    *,
    endpoint_url: str | None = None,
    day: date | None = None,
) -> list[str]:
    """Copy ``supplies.csv`` to ``<bucket_url>/supplies/supplies_<YYYYMMDD>.csv``.

    ``bucket_url`` is a folder path, a ``file://`` URL or ``s3://bucket[/prefix]``. For S3,
    credentials come from the standard AWS variables; ``endpoint_url`` (else
    ``AWS_ENDPOINT_URL``) points at an S3-compatible server. ``day`` defaults to today (UTC).
    Returns the URLs of the written objects.
    """
    source = csv_dir / "supplies.csv"
    if not source.is_file():
        raise LandingError(f"{source} is missing: generate the demo data first")
    day = day or datetime.now(UTC).date()
    relative = f"supplies/supplies_{day:%Y%m%d}.csv"
    if bucket_url.startswith("s3://"):
        return [_write_s3(source, bucket_url, relative, endpoint_url)]
    return [_write_local(source, _local_folder(bucket_url), relative)]


def _local_folder(bucket_url: str) -> Path:
    parts = urlsplit(bucket_url)
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    if parts.scheme and len(parts.scheme) > 1:  # a one-letter "scheme" is a Windows drive
        raise LandingError(
            f"landing URL scheme {parts.scheme!r} is not supported: use a folder path, "
            "file:// or s3://"
        )
    return Path(bucket_url)


def _write_local(source: Path, folder: Path, relative: str) -> str:
    target = (folder / relative).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    shutil.copyfile(source, partial)
    partial.replace(target)
    return target.as_uri()


def _write_s3(source: Path, bucket_url: str, relative: str, endpoint_url: str | None) -> str:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    parts = urlsplit(bucket_url)
    bucket, prefix = parts.netloc, parts.path.strip("/")
    key = f"{prefix}/{relative}" if prefix else relative
    client = boto3.client("s3", endpoint_url=endpoint_url)
    try:
        _ensure_bucket(client, bucket)
        client.upload_file(str(source), bucket, key)
    except (BotoCoreError, ClientError) as exc:
        raise LandingError(f"cannot write s3://{bucket}/{key}: {exc}") from exc
    return f"s3://{bucket}/{key}"


def _ensure_bucket(client: Any, bucket: str) -> None:
    """Create the demo bucket when it does not exist yet (a fresh local S3 server)."""
    from botocore.exceptions import ClientError

    try:
        client.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in {"404", "NoSuchBucket"}:
            raise
        region = client.meta.region_name
        if region and region != "us-east-1":  # us-east-1 rejects an explicit constraint
            client.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region}
            )
        else:
            client.create_bucket(Bucket=bucket)
