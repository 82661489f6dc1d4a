"""Artifacts on S3 (or any S3-compatible server) with the same all-or-nothing guarantee as local files.

A materialization is uploaded under a fresh version prefix (``<key>/v-<time>-<rand>/<files>``); only then is
the one-object pointer ``<key>/CURRENT`` rewritten to name it. A single PUT is atomic, so a reader sees the
previous complete version or the new complete version, never a half-uploaded mix. Transient errors are
retried by botocore (standard mode, ``max_attempts``).
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

CURRENT = "CURRENT"


def s3_client(endpoint_url: str | None = None, region_name: str | None = None, max_attempts: int = 5):
    """A boto3 S3 client through dagster-aws' S3Resource (credentials from the usual AWS chain)."""
    from dagster_aws.s3 import S3Resource

    return S3Resource(
        endpoint_url=endpoint_url, region_name=region_name or "us-east-1", max_attempts=max_attempts
    ).get_client()


def upload_folder(client, local: Path, bucket: str, key: str) -> str:
    """Upload every file under ``local`` as a new version of ``key``; returns the version prefix."""
    version = f"v-{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        client.upload_file(str(path), bucket, f"{key}/{version}/{path.relative_to(local).as_posix()}")
    client.put_object(Bucket=bucket, Key=f"{key}/{CURRENT}", Body=version.encode())
    return version


def current_version(client, bucket: str, key: str) -> str | None:
    try:
        return client.get_object(Bucket=bucket, Key=f"{key}/{CURRENT}")["Body"].read().decode().strip()
    except client.exceptions.NoSuchKey:
        return None


def download_current(client, bucket: str, key: str, local: Path) -> bool:
    """Download the current version of ``key`` into ``local`` (atomically); False when there is none."""
    from ifir_pipeline.storage import atomic_directory

    version = current_version(client, bucket, key)
    if version is None:
        return False
    prefix = f"{key}/{version}/"
    with atomic_directory(local) as staging:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                target = staging / obj["Key"][len(prefix) :]
                target.parent.mkdir(parents=True, exist_ok=True)
                client.download_file(bucket, obj["Key"], str(target))
    return True
