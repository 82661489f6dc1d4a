"""Run a backend over a budget's examples: cache first, then only the missing calls; rows in sample order."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import polars as pl

from ifir_pipeline.synthesis.base import SYNTHESIS_SCHEMA, InversionRequest, InversionResult, SynthesisBackend
from ifir_pipeline.synthesis.cache import ResponseCache, synthesis_cache_key
from ifir_pipeline.synthesis.prompt import POLARITY_REVERSAL_PROMPT_VERSION


def synthesize(
    inputs: pl.DataFrame,
    backend: SynthesisBackend,
    cache: ResponseCache,
    log: Callable[[str], None] = print,
    chunk: int = 256,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """``inputs`` columns: pair_id, example_id, pair_rank, source, query, instruction, positive_id, negative_id,
    positive_text, negative_text. Returns a :data:`SYNTHESIS_SCHEMA` frame and run statistics."""
    t0 = time.perf_counter()
    rows = inputs.sort("pair_rank").to_dicts()
    reqs = [
        InversionRequest(r["pair_id"], r["query"], r["instruction"], r["positive_text"], r["negative_text"])
        for r in rows
    ]
    keys = [synthesis_cache_key(backend.model, q) for q in reqs]
    results: dict[str, InversionResult] = {}
    for k in keys:
        hit = cache.get(k)
        if hit is not None:
            hit.cache_hit = True
            results[k] = hit
    missing = [(k, q) for k, q in zip(keys, reqs, strict=True) if k not in results]
    log(
        f"synthesis ({backend.name}/{backend.model}): {len(reqs)} pairs, "
        f"{len(reqs) - len(missing)} cached, {len(missing)} to write"
    )
    for start in range(0, len(missing), chunk):
        part = missing[start : start + chunk]
        for (k, _), res in zip(part, backend.invert([q for _, q in part]), strict=True):
            res.cache_key = k
            cache.put(k, res)
            results[k] = res
        log(f"synthesis: {min(start + chunk, len(missing))}/{len(missing)} written")
    sent = getattr(backend, "requests_sent", None)
    out = []
    for r, k in zip(rows, keys, strict=True):
        res = results[k]
        u = res.usage or {}
        out.append(
            {
                "pair_id": r["pair_id"],
                "example_id": r["example_id"],
                "pair_rank": r["pair_rank"],
                "source": r["source"],
                "query": r["query"],
                "positive_id": r["positive_id"],
                "negative_id": r["negative_id"],
                "instruction_og": res.instruction_og,
                "instruction_reversed": res.instruction_reversed,
                "og_generated": res.og_generated,
                "style": res.style,
                "rationale": res.rationale,
                "swap_achievable": res.swap_achievable,
                "status": res.status,
                "failure_reason": res.failure_reason,
                "backend": backend.name,
                "model": backend.model,
                "prompt_version": POLARITY_REVERSAL_PROMPT_VERSION,
                "cache_key": k,
                "cache_hit": res.cache_hit,
                "input_tokens": u.get("input_tokens", 0),
                "output_tokens": u.get("output_tokens", 0),
                "cache_read_tokens": u.get("cache_read_input_tokens", 0),
                "cache_write_tokens": u.get("cache_creation_input_tokens", 0),
                "cost_usd": 0.0 if res.cache_hit else res.cost_usd,
            }
        )
    frame = pl.DataFrame(out, schema=SYNTHESIS_SCHEMA)
    seconds = time.perf_counter() - t0
    stats = {
        "pairs": frame.height,
        "ok": int((frame["status"] == "ok").sum()),
        "failed": int((frame["status"] != "ok").sum()),
        "failures_by_reason": dict(Counter(r for r in frame["failure_reason"].to_list() if r)),
        "cache_hit_rate": round(float(frame["cache_hit"].mean() or 0.0), 4),
        "requests_sent": sent if sent is not None else len(missing),
        "input_tokens": int(frame["input_tokens"].sum()),
        "output_tokens": int(frame["output_tokens"].sum()),
        "cache_read_tokens": int(frame["cache_read_tokens"].sum()),
        "cost_usd": round(float(frame["cost_usd"].sum()), 6),
        "seconds": round(seconds, 2),
        "pairs_per_second": round(frame.height / max(seconds, 1e-9), 1),
        "styles": dict(Counter(s for s in frame["style"].to_list() if s)),
    }
    return frame, stats
