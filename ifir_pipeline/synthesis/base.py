"""The backend interface and the row schema of ``inverted_instructions``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import polars as pl

SYNTHESIS_SCHEMA = {
    "pair_id": pl.Utf8,  # example_id + "#" + negative index: one (q, d+, d-) triple
    "example_id": pl.Utf8,
    "pair_rank": pl.UInt32,  # budget order: a budget is the first N pairs
    "source": pl.Utf8,
    "query": pl.Utf8,
    "positive_id": pl.Utf8,
    "negative_id": pl.Utf8,
    "instruction_og": pl.Utf8,  # I: d+ relevant, d- not
    "instruction_reversed": pl.Utf8,  # I': d- relevant, d+ not
    "og_generated": pl.Boolean,  # True when the source had no instruction and the writer wrote I
    "style": pl.Utf8,  # requirement | exclusion | both | preference (of I')
    "rationale": pl.Utf8,
    "swap_achievable": pl.Boolean,
    "status": pl.Utf8,  # ok | failed
    "failure_reason": pl.Utf8,
    "backend": pl.Utf8,
    "model": pl.Utf8,
    "prompt_version": pl.Utf8,
    "cache_key": pl.Utf8,
    "cache_hit": pl.Boolean,
    "input_tokens": pl.Int64,
    "output_tokens": pl.Int64,
    "cache_read_tokens": pl.Int64,
    "cache_write_tokens": pl.Int64,
    "cost_usd": pl.Float64,
}


@dataclass(frozen=True)
class InversionRequest:
    pair_id: str
    query: str
    instruction: str | None
    positive: str
    negative: str


@dataclass
class InversionResult:
    pair_id: str
    instruction_og: str | None = None
    instruction_reversed: str | None = None
    og_generated: bool = False
    style: str | None = None
    rationale: str | None = None
    swap_achievable: bool = False
    status: str = "failed"
    failure_reason: str | None = None
    model: str = ""
    cache_key: str = ""
    cache_hit: bool = False
    usage: dict[str, int] = field(default_factory=dict)
    cost_usd: float = 0.0


class SynthesisBackend(Protocol):
    name: str
    model: str

    def invert(self, requests: list[InversionRequest]) -> list[InversionResult]: ...
