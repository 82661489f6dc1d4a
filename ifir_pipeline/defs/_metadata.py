"""Turning plain stats into Dagster metadata a person wants to read."""

from __future__ import annotations

import base64
import json
from typing import Any

import polars as pl
from dagster import MetadataValue

from ifir_pipeline.report import to_markdown


def preview(frame: pl.DataFrame, n: int = 10, max_chars: int = 120) -> MetadataValue:
    short = frame.head(n).with_columns(
        [pl.col(c).cast(pl.Utf8).str.slice(0, max_chars) for c, t in frame.schema.items() if t == pl.Utf8]
    )
    for c, t in short.schema.items():
        if isinstance(t, pl.List):
            short = short.with_columns(pl.col(c).list.len().alias(c + "_len")).drop(c)
    return MetadataValue.md(to_markdown(short) if short.height else "_empty_")


def png_markdown(png: bytes, alt: str) -> MetadataValue:
    """An inline PNG the asset page renders under [Show Markdown]."""
    return MetadataValue.md(f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})")


def stats_metadata(stats: dict[str, Any]) -> dict[str, Any]:
    """Numbers stay numbers (so the UI can plot them over time); nested values become JSON."""
    out: dict[str, Any] = {}
    for k, v in stats.items():
        if isinstance(v, bool):
            out[k] = MetadataValue.bool(v)
        elif isinstance(v, int):
            out[k] = MetadataValue.int(v)
        elif isinstance(v, float):
            out[k] = MetadataValue.float(v)
        elif isinstance(v, str):
            out[k] = MetadataValue.text(v)
        else:
            out[k] = MetadataValue.json(json.loads(json.dumps(v, default=str)))
    return out
