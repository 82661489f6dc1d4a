"""Plain JSONL / parquet / CSV tables with a column mapping given in config.

``mapping`` maps our field names to the file's column names, e.g.
``{"query_id": "qid", "query": "question", "positive_text": "answer_passage"}``.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ifir_pipeline.errors import DataFormatError
from ifir_pipeline.loaders._read import read_jsonl, resolve_uri


def read_table(path: str | Path, mapping: dict[str, str], required: list[str]) -> pl.DataFrame:
    """Read a table and rename mapped columns; each required field must be a non-empty string."""
    path = resolve_uri(path)
    suffix = path.suffix.lower()
    if path.stat().st_size == 0:
        raise DataFormatError(str(path), None, None, "file is empty")
    if suffix in (".jsonl", ".json"):
        frame = pl.DataFrame([rec for _, rec in read_jsonl(path)], infer_schema_length=None)
        offset = 1
    elif suffix == ".parquet":
        frame = pl.read_parquet(path)
        offset = 0
    elif suffix in (".csv", ".tsv"):
        try:
            frame = pl.read_csv(path, separator="\t" if suffix == ".tsv" else ",", infer_schema_length=0)
        except pl.exceptions.ComputeError as exc:
            raise DataFormatError(str(path), None, None, f"cannot read as {suffix[1:]}: {exc}") from None
        offset = 2
    else:
        raise DataFormatError(
            str(path), None, None, f"unknown table format {suffix!r} (use .jsonl, .parquet, .csv, .tsv)"
        )
    renamed = {}
    for ours in required:
        theirs = mapping.get(ours, ours)
        if theirs not in frame.columns:
            raise DataFormatError(str(path), None, theirs, f"missing required column (mapped to {ours!r})")
        renamed[theirs] = ours
    for ours, theirs in mapping.items():
        if theirs in frame.columns:
            renamed[theirs] = ours
    frame = frame.rename(renamed)
    for ours in required:
        col = frame[ours]
        if col.dtype != pl.Utf8:
            if col.dtype.is_integer():
                frame = frame.with_columns(pl.col(ours).cast(pl.Utf8))
                continue
            raise DataFormatError(str(path), f"record {offset}", ours, f"expected a string, got {col.dtype}")
        bad = frame.with_row_index("_i").filter(pl.col(ours).is_null() | (pl.col(ours).str.strip_chars() == ""))
        if bad.height:
            raise DataFormatError(str(path), int(bad["_i"][0]) + offset, ours, "empty text")
    return frame
