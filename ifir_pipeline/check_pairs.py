"""``ifir check-pairs``: the achievability check on pairs made by any generator.

Input: JSONL with ``id``, ``query``, ``positive``, ``negative`` (strings) and optionally ``instruction``,
``instruction_reversed``, ``source`` and ``swap_achievable`` (a label: then the summary reports agreement).
Output per row: ``id``, ``swap_achievable``, ``reason``, ``swap_probability``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from ifir_pipeline.achievability import AchievabilityConfig, AchievabilityModel, score_triples
from ifir_pipeline.errors import DataFormatError

REQUIRED = ("id", "query", "positive", "negative")
OPTIONAL_TEXT = ("instruction", "instruction_reversed", "source")


def read_pairs(path: str | Path) -> list[dict[str, Any]]:
    """Every row, strictly: a bad row names the file, its line and the field."""
    from ifir_pipeline.loaders._read import read_jsonl, resolve_uri

    p = resolve_uri(path)
    rows, seen = [], {}
    for line_no, rec in read_jsonl(p):
        for f in REQUIRED:
            v = rec.get(f)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and f == "id":
                v = rec[f] = str(v)
            if not isinstance(v, str) or not v.strip():
                raise DataFormatError(str(p), line_no, f, "missing or empty (a non-empty string is required)")
        for f in OPTIONAL_TEXT:
            if rec.get(f) is not None and not isinstance(rec[f], str):
                raise DataFormatError(str(p), line_no, f, f"must be a string or null, got {type(rec[f]).__name__}")
        if "swap_achievable" in rec and not isinstance(rec["swap_achievable"], bool):
            raise DataFormatError(str(p), line_no, "swap_achievable", "must be true or false")
        if rec["id"] in seen:
            raise DataFormatError(
                str(p), line_no, "id", f"duplicate id {rec['id']!r} (first on line {seen[rec['id']]})"
            )
        seen[rec["id"]] = line_no
        rows.append(rec)
    return rows


def check_rows(
    rows: list[dict[str, Any]], embed, model: AchievabilityModel, cfg: AchievabilityConfig
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Verdict per row and a summary (counts by reason and source; agreement when rows carry labels)."""
    res = score_triples(
        [r["query"] for r in rows], [r["positive"] for r in rows], [r["negative"] for r in rows], embed, model, cfg
    )
    out = [
        {
            "id": r["id"],
            "swap_achievable": bool(ok),
            "reason": reason,
            "swap_probability": round(float(p), 4),
        }
        for r, ok, reason, p in zip(
            rows, res["swap_achievable"], res["achievability_reason"], res["swap_probability"], strict=True
        )
    ]
    pred = np.array([o["swap_achievable"] for o in out], dtype=bool)
    summary: dict[str, Any] = {
        "summary": True,
        "rows": len(out),
        "swap_achievable": int(pred.sum()),
        "not_achievable": int((~pred).sum()),
        "reasons": dict(Counter(o["reason"] for o in out if o["reason"])),
        "check": model.version,
        "threshold": cfg.threshold if cfg.threshold is not None else round(model.threshold, 4),
    }
    sources = [r.get("source") for r in rows]
    if any(sources):
        summary["by_source"] = {
            s: {
                "rows": int(sum(1 for x in sources if x == s)),
                "swap_achievable": int(sum(1 for x, k in zip(sources, pred, strict=True) if x == s and k)),
            }
            for s in sorted({x for x in sources if x})
        }
    labelled = [i for i, r in enumerate(rows) if "swap_achievable" in r]
    if labelled:
        from ifir_pipeline.achievability_calibration import scores

        y = np.array([rows[i]["swap_achievable"] for i in labelled], dtype=bool)
        summary["against_labels"] = scores(y, pred[labelled])
    return out, summary
