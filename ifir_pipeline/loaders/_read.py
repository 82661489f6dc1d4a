"""Strict readers shared by every loader: UTF-8, one record per line, typed fields, located errors."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl

from ifir_pipeline.errors import DataFormatError

CORPUS_SCHEMA = {"doc_id": pl.Utf8, "title": pl.Utf8, "text": pl.Utf8}
QUERIES_SCHEMA = {"query_id": pl.Utf8, "text": pl.Utf8}
QRELS_SCHEMA = {"query_id": pl.Utf8, "doc_id": pl.Utf8, "score": pl.Int32}


def resolve_uri(uri: str | Path) -> Path:
    """Return a local path for ``uri``; ``s3://bucket/prefix`` is downloaded to a local cache first.

    S3 uses boto3's default credential chain and ``AWS_ENDPOINT_URL`` (boto3 honours it), so a local
    S3-compatible server works the same as AWS.
    """
    text = str(uri)
    if not text.startswith("s3://"):
        path = Path(text)
        if not path.exists():
            raise DataFormatError(text, None, None, "no such file or folder")
        return path
    import boto3

    bucket, _, prefix = text[len("s3://") :].partition("/")
    cache_root = Path(os.environ.get("IFIR_S3_CACHE", Path(tempfile.gettempdir()) / "ifir-s3-cache"))
    target = cache_root / bucket / prefix
    client = boto3.client("s3")
    paginator = client.get_paginator("list_objects_v2")
    keys = [obj["Key"] for page in paginator.paginate(Bucket=bucket, Prefix=prefix) for obj in page.get("Contents", [])]
    if not keys:
        raise DataFormatError(text, None, None, "no objects under this S3 prefix")
    for key in keys:
        local = cache_root / bucket / key
        local.parent.mkdir(parents=True, exist_ok=True)
        client.download_file(bucket, key, str(local))
    return target


def _decode(path: Path, raw: bytes, line_no: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataFormatError(
            str(path), line_no, None, f"not valid UTF-8 (byte {exc.start}: {raw[exc.start : exc.start + 4]!r})"
        ) from None


def _raise_non_utf8_field(path: Path, raw: bytes, line_no: int, exc: UnicodeDecodeError) -> None:
    """Name the field that holds the bad bytes when the rest of the record still parses."""
    field = None
    try:
        record = json.loads(raw.decode("utf-8", errors="replace"))
        if isinstance(record, dict):
            field = next((k for k, v in record.items() if "\ufffd" in json.dumps(v, ensure_ascii=False)), None)
    except json.JSONDecodeError:
        pass
    raise DataFormatError(
        str(path), line_no, field, f"not valid UTF-8 (byte {exc.start}: {raw[exc.start : exc.start + 4]!r})"
    ) from None


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, record)``; blank lines are skipped, everything else must be a JSON object."""
    if path.stat().st_size == 0:
        raise DataFormatError(str(path), None, None, "file is empty")
    n_records = 0
    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8").strip()
            except UnicodeDecodeError as exc:
                _raise_non_utf8_field(path, raw, line_no, exc)
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataFormatError(
                    str(path), line_no, None, f"invalid JSON ({exc.msg} at column {exc.colno}); truncated line?"
                ) from None
            if not isinstance(record, dict):
                raise DataFormatError(str(path), line_no, None, f"expected a JSON object, got {type(record).__name__}")
            n_records += 1
            yield line_no, record
    if n_records == 0:
        raise DataFormatError(str(path), None, None, "file holds no records")


def read_delimited(path: Path, delimiter: str, has_header: bool | None = None) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line_number, cells)`` from a TSV/CSV file with strict UTF-8 decoding."""
    if path.stat().st_size == 0:
        raise DataFormatError(str(path), None, None, "file is empty")
    raw = path.read_bytes()
    for line_no, line in enumerate(raw.split(b"\n"), start=1):
        _decode(path, line, line_no)
    text = raw.decode("utf-8")
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    for line_no, cells in enumerate(reader, start=1):
        if not cells or all(not c.strip() for c in cells):
            continue
        yield line_no, cells


def require_str(
    file: Path | str, line: int | str, record: dict[str, Any], field: str, *, allow_empty: bool = False
) -> str:
    if field not in record or record[field] is None:
        raise DataFormatError(str(file), line, field, "missing required field")
    value = record[field]
    if isinstance(value, (int, float)) and not isinstance(value, bool) and field.endswith(("id", "_id", "-id")):
        value = str(value)
    if not isinstance(value, str):
        raise DataFormatError(str(file), line, field, f"expected a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise DataFormatError(str(file), line, field, "empty text")
    return value


def check_unique(file: Path | str, rows: list[tuple[int, str, str]], what: str) -> list[tuple[int, str, str]]:
    """Drop exact repeats of ``(id, text)``; a repeated id with different text is an error."""
    seen: dict[str, tuple[int, str]] = {}
    kept = []
    for line, key, text in rows:
        if key in seen:
            first_line, first_text = seen[key]
            if first_text != text:
                raise DataFormatError(
                    str(file), line, what, f"duplicate id {key!r} with different text (first seen on line {first_line})"
                )
            continue
        seen[key] = (line, text)
        kept.append((line, key, text))
    return kept


def check_qrels_refs(
    file: Path | str, qrels: pl.DataFrame, query_ids: set[str], doc_ids: set[str], lines: list[int]
) -> None:
    for line, qid, did in zip(lines, qrels["query_id"], qrels["doc_id"], strict=True):
        if qid not in query_ids:
            raise DataFormatError(str(file), line, "query-id", f"qrels name unknown query {qid!r}")
        if did not in doc_ids:
            raise DataFormatError(str(file), line, "corpus-id", f"qrels name unknown document {did!r}")
