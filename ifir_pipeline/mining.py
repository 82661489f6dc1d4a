"""Hybrid hard-negative mining: BM25 (bm25s) and exact dense top-k (chunked torch matmul), fused by RRF.

Peak memory is the embeddings plus one ``(query_chunk, n_docs)`` score block: it does not grow with
queries x corpus. Negatives are taken from a rank window of the fused list after three false-negative
guards (known positives, a score margin relative to the positive, near-duplicates of the positive).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import polars as pl
import torch

from ifir_pipeline.hashing import text_hash

logger = logging.getLogger(__name__)

NEGATIVE_SCHEMA = {
    "example_id": pl.Utf8,
    "query_id": pl.Utf8,
    "positive_id": pl.Utf8,
    "negative_id": pl.Utf8,
    "rank": pl.Int32,  # 0 for a source-provided instruction negative, else the fused rank (1-based)
    "negative_score": pl.Float32,  # dense cosine(query, negative)
    "positive_score": pl.Float32,  # dense cosine(query, positive)
    "bm25_rank": pl.Int32,
    "dense_rank": pl.Int32,
    "negative_source": pl.Utf8,  # "instruction_negative" | "mined"
}


@dataclass(frozen=True)
class MiningConfig:
    k: int = 3  # negatives per example
    candidates: int = 100  # depth of each ranked list before fusion
    rank_min: int = 3  # fused-rank window to take negatives from (1-based, inclusive)
    rank_max: int = 50
    max_score_ratio: float = 0.95  # drop a candidate whose dense score exceeds this share of the positive's
    near_duplicate_cosine: float = 0.98
    rrf_k: int = 60
    use_bm25: bool = True
    use_dense: bool = True
    query_chunk: int = 512


@dataclass
class GuardCounts:
    known_positive: int = 0
    score_margin: int = 0
    near_duplicate_hash: int = 0
    near_duplicate_cosine: int = 0
    outside_window: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, int]:
        d = asdict(self)
        skipped = d.pop("skipped")
        d.update({f"skipped_{k}": v for k, v in skipped.items()})
        return d


def dense_topk(queries: np.ndarray, docs: np.ndarray, k: int, chunk: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by inner product (embeddings are normalized), ``chunk`` queries at a time."""
    k = min(k, docs.shape[0])
    d = torch.from_numpy(docs)
    idx_out = np.empty((queries.shape[0], k), dtype=np.int64)
    val_out = np.empty((queries.shape[0], k), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, queries.shape[0], chunk):
            q = torch.from_numpy(queries[start : start + chunk])
            vals, idx = torch.topk(q @ d.T, k, dim=1)
            idx_out[start : start + chunk] = idx.numpy()
            val_out[start : start + chunk] = vals.numpy()
    return idx_out, val_out


def bm25_topk(query_texts: list[str], doc_texts: list[str], k: int) -> np.ndarray:
    import bm25s

    k = min(k, len(doc_texts))
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(doc_texts, stopwords="en", show_progress=False), show_progress=False)
    q_tokens = bm25s.tokenize(query_texts, stopwords="en", show_progress=False)
    idx, _ = retriever.retrieve(q_tokens, k=k, show_progress=False, n_threads=0)
    return np.asarray(idx, dtype=np.int64)


def rrf_fuse(lists: list[np.ndarray], rrf_k: int) -> list[list[int]]:
    """Reciprocal-rank fusion of per-query ranked index lists; returns fused index order per query."""
    n = lists[0].shape[0]
    fused = []
    for i in range(n):
        scores: dict[int, float] = {}
        for ranked in lists:
            for r, doc in enumerate(ranked[i]):
                scores[int(doc)] = scores.get(int(doc), 0.0) + 1.0 / (rrf_k + r + 1)
        fused.append(sorted(scores, key=lambda d: (-scores[d], d)))
    return fused


def mine_negatives(
    examples: pl.DataFrame,
    documents: pl.DataFrame,
    query_emb: np.ndarray,
    doc_emb: np.ndarray,
    known_positives: dict[str, set[str]],
    config: MiningConfig,
    progress: Callable[[str], None] | None = None,
) -> tuple[pl.DataFrame, GuardCounts]:
    """Mine ``config.k`` negatives per example from ``documents`` (one source's corpus).

    ``query_emb`` rows align with ``examples``, ``doc_emb`` rows with ``documents``; both normalized.
    ``known_positives`` maps query_id to every document judged relevant for it.
    """
    counts = GuardCounts()
    if documents.height == 0:
        raise ValueError("cannot mine negatives: the corpus is empty")
    if examples.height == 0:
        return pl.DataFrame(schema=NEGATIVE_SCHEMA), counts
    doc_ids = documents["doc_id"].to_list()
    doc_index = {d: i for i, d in enumerate(doc_ids)}
    doc_hash = [text_hash(t) for t in documents["text"]]
    depth = min(config.candidates, len(doc_ids))
    lists = []
    dense_idx = None
    if config.use_dense:
        dense_idx, _ = dense_topk(query_emb, doc_emb, depth, config.query_chunk)
        lists.append(dense_idx)
        if progress:
            progress(f"dense top-{depth} done for {examples.height} queries")
    bm25_idx = None
    if config.use_bm25:
        bm25_idx = bm25_topk(examples["query"].to_list(), documents["text"].to_list(), depth)
        lists.append(bm25_idx)
        if progress:
            progress(f"BM25 top-{depth} done for {examples.height} queries")
    fused = rrf_fuse(lists, config.rrf_k) if len(lists) > 1 else [list(map(int, r)) for r in lists[0]]

    rows: list[dict] = []
    for i, ex in enumerate(examples.iter_rows(named=True)):
        pos = ex["positive_id"]
        pos_i = doc_index.get(pos)
        if pos_i is None:
            counts.skipped["positive_not_in_corpus"] = counts.skipped.get("positive_not_in_corpus", 0) + 1
            continue
        pos_score = float(query_emb[i] @ doc_emb[pos_i])
        taken = 0
        for neg in ex.get("instruction_negative_ids") or []:
            if neg in doc_index and taken < config.k:
                j = doc_index[neg]
                rows.append(
                    _row(ex, neg, 0, float(query_emb[i] @ doc_emb[j]), pos_score, None, None, "instruction_negative")
                )
                taken += 1
        positives = known_positives.get(ex["query_id"], set()) | {pos}
        b_rank = {int(d): r + 1 for r, d in enumerate(bm25_idx[i])} if bm25_idx is not None else {}
        d_rank = {int(d): r + 1 for r, d in enumerate(dense_idx[i])} if dense_idx is not None else {}
        for r, j in enumerate(fused[i], start=1):
            if taken >= config.k:
                break
            cand = doc_ids[j]
            if cand in positives:
                counts.known_positive += 1
                continue
            if r < config.rank_min or r > config.rank_max:
                counts.outside_window += 1
                continue
            if doc_hash[j] == doc_hash[pos_i]:
                counts.near_duplicate_hash += 1
                continue
            if float(doc_emb[j] @ doc_emb[pos_i]) >= config.near_duplicate_cosine:
                counts.near_duplicate_cosine += 1
                continue
            score = float(query_emb[i] @ doc_emb[j])
            if pos_score > 0 and score > config.max_score_ratio * pos_score:
                counts.score_margin += 1
                continue
            rows.append(_row(ex, cand, r, score, pos_score, b_rank.get(j), d_rank.get(j), "mined"))
            taken += 1
        if taken < config.k:
            reason = "corpus_smaller_than_k" if len(doc_ids) <= config.k else "too_few_candidates_after_guards"
            counts.skipped[reason] = counts.skipped.get(reason, 0) + 1
    return pl.DataFrame(rows, schema=NEGATIVE_SCHEMA), counts


def _row(ex: dict, neg: str, rank: int, score: float, pos_score: float, b: int | None, d: int | None, src: str) -> dict:
    return {
        "example_id": ex["example_id"],
        "query_id": ex["query_id"],
        "positive_id": ex["positive_id"],
        "negative_id": neg,
        "rank": rank,
        "negative_score": score,
        "positive_score": pos_score,
        "bm25_rank": b,
        "dense_rank": d,
        "negative_source": src,
    }


def mine_pool(
    examples: pl.DataFrame,
    documents: pl.DataFrame,
    encoder,
    cache,
    config: MiningConfig,
    log: Callable[[str], None] = print,
) -> tuple[pl.DataFrame, dict]:
    """Mine every example against its own source's corpus, with embeddings from the cache."""
    import time

    t0 = time.perf_counter()
    known: dict[str, set[str]] = {}
    for qid, pos in examples.select("query_id", "positive_id").iter_rows():
        known.setdefault(qid, set()).add(pos)
    parts, totals = [], GuardCounts()
    for source in sorted(set(examples["source"])):
        ex = examples.filter(pl.col("source") == source)
        docs = documents.filter(pl.col("source") == source)
        if docs.height == 0:
            raise ValueError(f"source {source!r}: cannot mine negatives, its corpus is empty")
        doc_texts = [f"{t} {x}".strip() for t, x in zip(docs["title"], docs["text"], strict=True)]
        log(f"mining {source}: encoding {docs.height} documents and {ex.height} queries (cache: {cache.root})")
        d_emb = cache.encode(encoder, doc_texts, [text_hash(t) for t in doc_texts], progress=True)
        q_texts = ex["query"].to_list()
        q_emb = cache.encode(encoder, q_texts, ["q:" + text_hash(t) for t in q_texts])
        known_src = {k: {p for p in v if p.startswith(source + "/")} for k, v in known.items()}
        frame, counts = mine_negatives(
            ex, docs.with_columns(pl.Series("text", doc_texts)), q_emb, d_emb, known_src, config, log
        )
        parts.append(frame)
        for k, v in counts.as_dict().items():
            if k.startswith("skipped_"):
                totals.skipped[k[8:]] = totals.skipped.get(k[8:], 0) + v
            else:
                setattr(totals, k, getattr(totals, k) + v)
    out = pl.concat(parts) if parts else pl.DataFrame(schema=NEGATIVE_SCHEMA)
    per_ex = out.group_by("example_id").len()
    stats = {
        "rows": out.height,
        "examples_with_negatives": per_ex.height,
        "share_with_k_negatives": round(float((per_ex["len"] >= config.k).sum()) / max(examples.height, 1), 4),
        "guards": totals.as_dict(),
        "negative_sources": dict(out.group_by("negative_source").len().iter_rows()),
        "negative_score_quantiles": {
            q: round(float(out["negative_score"].quantile(q) or 0), 4) for q in (0.1, 0.5, 0.9)
        },
        "positive_score_median": round(float(out["positive_score"].median() or 0), 4),
        "embedding_cache_hits": cache.hits,
        "embedding_cache_misses": cache.misses,
        "config": {k: getattr(config, k) for k in config.__dataclass_fields__},
        "seconds": round(time.perf_counter() - t0, 2),
    }
    return out, stats
