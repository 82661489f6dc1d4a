"""The training pool: leakage guard, de-duplication and a nested, stratified order for budget samples.

Budget samples are prefixes of one seeded order, so a larger budget always contains a smaller one's
examples. The order interleaves sources by their share of the pool, so every prefix is stratified.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from ifir_pipeline.hashing import text_hash
from ifir_pipeline.loaders import FollowIRSet, RetrievalSet


@dataclass(frozen=True)
class EvalFingerprint:
    """Normalized-text hashes of every evaluation query and of the evaluation documents that must stay out."""

    query_hashes: frozenset[str]
    doc_hashes: frozenset[str]


def eval_fingerprint(sets: list[FollowIRSet | RetrievalSet]) -> EvalFingerprint:
    """Collect what training must never see.

    Queries: every evaluation query text. Documents: for FollowIR-format sets the whole corpus (it is small and
    every document is a candidate); for retrieval sets the judged documents, since their corpus may be a
    public collection that training legitimately shares (SciFact's abstracts), and what leaks an answer is the
    judged (query, document) link.
    """
    q: set[str] = set()
    d: set[str] = set()
    for s in sets:
        q.update(text_hash(t) for t in s.queries["text"])
        if isinstance(s, FollowIRSet):
            q.update(text_hash(t) for t in s.instructions["instruction"])
            d.update(
                text_hash(f"{t} {x}") for t, x in zip(s.corpus["title"], s.corpus["text"], strict=True) if x.strip()
            )
        else:
            judged = set(s.qrels.filter(pl.col("score") > 0)["doc_id"])
            sub = s.corpus.filter(pl.col("doc_id").is_in(list(judged)))
            d.update(text_hash(f"{t} {x}") for t, x in zip(sub["title"], sub["text"], strict=True))
    return EvalFingerprint(frozenset(q), frozenset(d))


@dataclass(frozen=True)
class GuardReport:
    leaked_queries: int
    leaked_documents: int
    examples_dropped_for_documents: int
    duplicate_examples: int


def apply_leakage_guard(
    examples: pl.DataFrame, documents: pl.DataFrame, fp: EvalFingerprint
) -> tuple[pl.DataFrame, pl.DataFrame, GuardReport]:
    """Drop evaluation queries, evaluation documents and examples whose positive is one of them."""
    docs = documents.with_columns(
        pl.struct("title", "text")
        .map_elements(lambda r: text_hash(f"{r['title']} {r['text']}"), return_dtype=pl.Utf8)
        .alias("text_hash")
    )
    leaked_docs = docs.filter(pl.col("text_hash").is_in(list(fp.doc_hashes)))
    docs = docs.filter(~pl.col("text_hash").is_in(list(fp.doc_hashes)))
    ex = examples.with_columns(pl.col("query").map_elements(text_hash, return_dtype=pl.Utf8).alias("query_hash"))
    inst_leak = pl.col("instruction").map_elements(text_hash, return_dtype=pl.Utf8).is_in(list(fp.query_hashes))
    leaked_q = ex.filter(pl.col("query_hash").is_in(list(fp.query_hashes)) | inst_leak.fill_null(False))
    ex = ex.join(leaked_q.select("example_id"), on="example_id", how="anti")
    before = ex.height
    ex = ex.filter(pl.col("positive_id").is_in(docs["doc_id"].implode()))
    dropped_for_docs = before - ex.height
    ex = ex.with_columns(
        pl.col("instruction_negative_ids").list.eval(pl.element().filter(pl.element().is_in(docs["doc_id"].implode())))
    )
    before = ex.height
    ex = ex.unique(subset=["query_hash", "positive_id"], keep="first", maintain_order=True)
    report = GuardReport(
        leaked_queries=leaked_q.height,
        leaked_documents=leaked_docs.height,
        examples_dropped_for_documents=dropped_for_docs,
        duplicate_examples=before - ex.height,
    )
    return ex.drop("query_hash"), docs, report


def nested_sample_order(examples: pl.DataFrame, seed: int, weights: dict[str, float] | None = None) -> pl.DataFrame:
    """Add ``sample_rank`` (UInt32): a seeded order whose every prefix is stratified across sources.

    Each source is shuffled with its own generator; its i-th item gets position ``(i + u) / (w * n_source)``
    with ``u`` uniform in [0, 1) and ``w`` the source's weight (default 1), and the pool is sorted by that
    position. With equal weights every prefix holds each source's share of the pool to within one example;
    a weight of 0.5 halves a source's share of every prefix until the other sources run out.
    """
    weights = weights or {}
    parts = []
    for source in sorted(set(examples["source"])):
        sub = examples.filter(pl.col("source") == source).sort("example_id")
        rng = np.random.default_rng([seed, abs(hash_source(source))])
        perm = rng.permutation(sub.height)
        w = float(weights.get(source, 1.0))
        pos = (np.arange(sub.height) + rng.random(sub.height)) / max(sub.height * w, 1e-9)
        sub = sub[perm.tolist()].with_columns(pl.Series("_pos", pos, dtype=pl.Float64))
        parts.append(sub)
    pool = pl.concat(parts).sort(["_pos", "example_id"])
    return pool.with_columns(pl.int_range(pl.len(), dtype=pl.UInt32).alias("sample_rank")).drop("_pos")


def hash_source(source: str) -> int:
    return int(text_hash(source)[:8], 16)


def budget_prefix(frame: pl.DataFrame, n: int) -> pl.DataFrame:
    """The first ``n`` rows in sample order: the nested budget sample."""
    return frame.sort("sample_rank").head(n)
