"""Run a backend over a budget's pairs: skip pairs that cannot swap, cache first, then only the missing calls.

Pairs whose achievability verdict is false are never given to the writer (status ``skipped``): no call is
sent for them, and the run's statistics say how many and what they would have cost. Rows come back in pair
order. With a ``control`` writer (offline), every written pair is also written by it, so recipes can compare
writers on the same triples.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import polars as pl

from ifir_pipeline.synthesis.base import SYNTHESIS_SCHEMA, InversionRequest, InversionResult, SynthesisBackend
from ifir_pipeline.synthesis.cache import ResponseCache, synthesis_cache_key
from ifir_pipeline.synthesis.prompt import POLARITY_REVERSAL_PROMPT_VERSION


def _request(r: dict[str, Any]) -> InversionRequest:
    verdict = r.get("swap_achievable")
    return InversionRequest(
        r["pair_id"],
        r["query"],
        r["instruction"],
        r["positive_text"],
        r["negative_text"],
        example_id=r.get("example_id"),
        positive_id=r.get("positive_id"),
        negative_id=r.get("negative_id"),
        source=r.get("source"),
        swap_achievable=None if verdict is None else bool(verdict),
        achievability_reason=r.get("achievability_reason"),
    )


def _skipped(q: InversionRequest) -> InversionResult:
    return InversionResult(
        pair_id=q.pair_id,
        rationale=f"not sent: {q.achievability_reason or 'swap not achievable'}",
        failure_reason="swap_not_achievable",
        status="skipped",
        writer="skipped",
    )


def synthesize(
    inputs: pl.DataFrame,
    backend: SynthesisBackend,
    cache: ResponseCache,
    log: Callable[[str], None] = print,
    chunk: int = 256,
    skip_not_achievable: bool = True,
    control: SynthesisBackend | None = None,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """``inputs`` columns: pair_id, example_id, pair_rank, source, query, instruction, positive_id, negative_id,
    positive_text, negative_text, and optionally the check's swap_achievable / swap_probability /
    achievability_reason. Returns a :data:`SYNTHESIS_SCHEMA` frame and run statistics."""
    t0 = time.perf_counter()
    rows = inputs.sort("pair_rank").to_dicts()
    reqs = [_request(r) for r in rows]
    keys = [synthesis_cache_key(backend.model, q) for q in reqs]
    results: dict[str, InversionResult] = {}
    skipped = {k for k, q in zip(keys, reqs, strict=True) if skip_not_achievable and q.swap_achievable is False}
    for k in keys:
        if k in skipped:
            continue
        hit = cache.get(k)
        if hit is not None:
            hit.cache_hit = True
            results[k] = hit
    missing = [(k, q) for k, q in zip(keys, reqs, strict=True) if k not in results and k not in skipped]
    estimate = getattr(backend, "estimate_cost", None)
    not_sent_usd = sum(estimate(q) for k, q in zip(keys, reqs, strict=True) if k in skipped) if estimate else 0.0
    log(
        f"synthesis ({backend.name}/{backend.model}): {len(reqs)} pairs, {len(skipped)} skipped as not "
        f"achievable, {len(reqs) - len(missing) - len(skipped)} cached, {len(missing)} to write"
    )
    for start in range(0, len(missing), chunk):
        part = missing[start : start + chunk]
        for (k, _), res in zip(part, backend.invert([q for _, q in part]), strict=True):
            res.cache_key = k
            res.writer = res.writer or backend.name
            cache.put(k, res)
            results[k] = res
        log(f"synthesis: {min(start + chunk, len(missing))}/{len(missing)} written")
    for k, q in zip(keys, reqs, strict=True):
        if k in skipped:
            results[k] = _skipped(q)
    controls = _control(reqs, keys, results, backend, control)
    sent = getattr(backend, "requests_sent", None)
    out = []
    for r, k in zip(rows, keys, strict=True):
        res = results[k]
        u = res.usage or {}
        c = controls.get(k)
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
                "swap_probability": r.get("swap_probability"),
                "achievability_reason": _reason(res, r),
                "writer": res.writer or backend.name,
                "status": res.status,
                "failure_reason": res.failure_reason,
                "backend": backend.name,
                "model": res.model or backend.model,
                "prompt_version": POLARITY_REVERSAL_PROMPT_VERSION,
                "cache_key": k,
                "cache_hit": res.cache_hit,
                "input_tokens": u.get("input_tokens", 0),
                "output_tokens": u.get("output_tokens", 0),
                "cache_read_tokens": u.get("cache_read_input_tokens", 0),
                "cache_write_tokens": u.get("cache_creation_input_tokens", 0),
                "cost_usd": 0.0 if res.cache_hit else res.cost_usd,
                "control_instruction_og": c.instruction_og if c else None,
                "control_instruction_reversed": c.instruction_reversed if c else None,
                "control_style": c.style if c else None,
                "control_writer": getattr(control, "model", None) if c else None,
            }
        )
    frame = pl.DataFrame(out, schema=SYNTHESIS_SCHEMA)
    seconds = time.perf_counter() - t0
    written = frame.filter(pl.col("status") != "skipped")
    stats = {
        "pairs": frame.height,
        "ok": int((frame["status"] == "ok").sum()),
        "failed": int((frame["status"] == "failed").sum()),
        "skipped_not_achievable": len(skipped),
        "calls_not_sent": len(skipped) if estimate else 0,
        "usd_not_spent_estimate": round(not_sent_usd, 4),
        "failures_by_reason": dict(Counter(r for r in frame["failure_reason"].to_list() if r)),
        "rows_by_writer": dict(Counter(frame["writer"].to_list())),
        "ok_by_writer": dict(Counter(frame.filter(pl.col("status") == "ok")["writer"].to_list())),
        "cache_hit_rate": round(float(written["cache_hit"].mean() or 0.0), 4) if written.height else 0.0,
        "requests_sent": sent if sent is not None else len(missing),
        "input_tokens": int(frame["input_tokens"].sum()),
        "output_tokens": int(frame["output_tokens"].sum()),
        "cache_read_tokens": int(frame["cache_read_tokens"].sum()),
        "cost_usd": round(float(frame["cost_usd"].sum()), 6),
        "seconds": round(seconds, 2),
        "pairs_per_second": round(frame.height / max(seconds, 1e-9), 1),
        "styles": dict(Counter(s for s in frame["style"].to_list() if s)),
        "control_writer": getattr(control, "model", None) if control is not None else None,
    }
    lookups = getattr(backend, "lookups", None)
    if lookups:
        stats["recording_lookups"] = dict(lookups)
    return frame, stats


def _reason(res: InversionResult, row: dict[str, Any]) -> str | None:
    if res.status == "skipped":
        return row.get("achievability_reason") or "negative_off_topic"
    if res.failure_reason == "not_achievable":
        return "recorded_not_achievable" if res.writer == "recorded" else "llm_not_achievable"
    return None


def _control(
    reqs: list[InversionRequest],
    keys: list[str],
    results: dict[str, InversionResult],
    backend: SynthesisBackend,
    control: SynthesisBackend | None,
) -> dict[str, InversionResult]:
    """The control writer's answer for every pair the main writer wrote successfully."""
    todo = [(k, q) for k, q in zip(keys, reqs, strict=True) if results[k].status == "ok"]
    if control is None:
        return {}
    if control.model == backend.model:  # the writer is the control: nothing to redo
        return {k: results[k] for k, _ in todo}
    out = {}
    for (k, _), res in zip(todo, control.invert([q for _, q in todo]), strict=True):
        res.writer = res.writer or control.name
        out[k] = res
    return out
