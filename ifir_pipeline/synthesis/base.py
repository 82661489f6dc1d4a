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
    "swap_probability": pl.Float32,  # the achievability check's probability for this triple (null: no check)
    "achievability_reason": pl.Utf8,  # why the swap is not achievable (check, recording or the writer LLM)
    "writer": pl.Utf8,  # who wrote this row: recorded | offline | anthropic | local | skipped
    "status": pl.Utf8,  # ok | failed | skipped (not sent: the check says the swap is not achievable)
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
    # the same triple written by the control writer (offline), for writer comparisons on the same triples
    "control_instruction_og": pl.Utf8,
    "control_instruction_reversed": pl.Utf8,
    "control_style": pl.Utf8,
    "control_writer": pl.Utf8,
}


@dataclass(frozen=True)
class InversionRequest:
    pair_id: str
    query: str
    instruction: str | None
    positive: str
    negative: str
    # the pool's ids (a recording is matched by them) and the achievability verdict (None: not checked)
    example_id: str | None = None
    positive_id: str | None = None
    negative_id: str | None = None
    source: str | None = None
    swap_achievable: bool | None = None
    achievability_reason: str | None = None


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
    writer: str = ""


class SynthesisBackend(Protocol):
    name: str
    model: str

    def invert(self, requests: list[InversionRequest]) -> list[InversionResult]: ...
