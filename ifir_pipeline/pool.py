"""``source_corpora``: every training source loaded, evaluation data guarded out, one nested sample order.

Tables:
- ``examples``: :data:`~ifir_pipeline.loaders.EXAMPLE_SCHEMA` plus ``sample_rank: UInt32``
- ``documents``: :data:`~ifir_pipeline.loaders.DOCUMENT_SCHEMA` plus ``text_hash: Utf8``
- ``eval_hashes``: ``set: Utf8, kind: Utf8 ("query" | "document"), hash: Utf8``: what training must never
  contain, per evaluation set (FollowIR hub tasks included when configured)
"""

from __future__ import annotations

import time
from typing import Any

import polars as pl

from ifir_pipeline.loaders import SourceSpec, load_eval_set, load_training_source
from ifir_pipeline.sampling import apply_leakage_guard, eval_fingerprint, nested_sample_order


def build_source_corpora(
    train_specs: list[SourceSpec], eval_specs: list[SourceSpec], seed: int
) -> tuple[dict[str, pl.DataFrame], dict[str, Any]]:
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    ex_parts, doc_parts = [], []
    for spec in train_specs:
        t = time.perf_counter()
        src = load_training_source(spec)
        timings[f"load_{spec.name}_s"] = round(time.perf_counter() - t, 2)
        ex_parts.append(src.examples)
        doc_parts.append(src.documents)
    examples = pl.concat(ex_parts)
    documents = pl.concat(doc_parts).unique(subset=["doc_id"], keep="first", maintain_order=True)
    eval_sets = []
    for spec in eval_specs:
        t = time.perf_counter()
        eval_sets.append(load_eval_set(spec))
        timings[f"load_eval_{spec.name}_s"] = round(time.perf_counter() - t, 2)
    fp = eval_fingerprint(eval_sets)
    per_set = {s.name: eval_fingerprint([s]) for s in eval_sets}
    raw_examples, raw_docs = examples.height, documents.height
    examples, documents, guard = apply_leakage_guard(examples, documents, fp)
    weights = {spec.name: spec.weight for spec in train_specs}
    examples = nested_sample_order(examples, seed, weights)
    eval_hashes = pl.DataFrame(
        [
            (name, kind, h)
            for name, f in per_set.items()
            for kind, hashes in (("query", f.query_hashes), ("document", f.doc_hashes))
            for h in sorted(hashes)
        ],
        schema={"set": pl.Utf8, "kind": pl.Utf8, "hash": pl.Utf8},
        orient="row",
    )
    lengths = examples.join(documents.select("doc_id", "text"), left_on="positive_id", right_on="doc_id").select(
        pl.col("query").str.len_chars().alias("query_chars"), pl.col("text").str.len_chars().alias("doc_chars")
    )
    stats = {
        "examples": examples.height,
        "documents": documents.height,
        "examples_per_source": dict(examples.group_by("source").len().sort("source").iter_rows()),
        "documents_per_source": dict(documents.group_by("source").len().sort("source").iter_rows()),
        "source_weights": weights,
        "grouped_sources": sorted(set(documents.filter(pl.col("group").is_not_null())["source"])),
        "with_instruction": int(examples["instruction"].is_not_null().sum()),
        "leakage_removed_queries": guard.leaked_queries,
        "leakage_removed_documents": guard.leaked_documents,
        "leakage_removed_examples_by_document": guard.examples_dropped_for_documents,
        "duplicates_removed": guard.duplicate_examples + (raw_docs - documents.height - guard.leaked_documents),
        "raw_examples": raw_examples,
        "eval_sets": [s.name for s in eval_specs],
        "eval_fingerprints": {
            n: {"queries": len(f.query_hashes), "documents": len(f.doc_hashes)} for n, f in per_set.items()
        },
        "query_chars": lengths["query_chars"].describe().to_dicts() if lengths.height else [],
        "doc_chars_p50": float(lengths["doc_chars"].median() or 0),
        "doc_chars_p95": float(lengths["doc_chars"].quantile(0.95) or 0),
        "query_chars_p50": float(lengths["query_chars"].median() or 0),
        "seed": seed,
        "seconds": round(time.perf_counter() - t0, 2),
        **timings,
    }
    stats.pop("query_chars")
    return {"examples": examples, "documents": documents, "eval_hashes": eval_hashes}, stats


def document_text(title: str | None, text: str) -> str:
    """What an encoder reads for a document (title first, as mteb's corpus formatting does)."""
    return f"{title} {text}".strip() if title else text
