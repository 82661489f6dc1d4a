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
    "preference": pl.Int32,  # 0-based order of the negative within its example: the pair order follows it
    "negative_score": pl.Float32,  # dense cosine(query, negative)
    "positive_score": pl.Float32,  # dense cosine(query, positive)
    "bm25_rank": pl.Int32,
    "dense_rank": pl.Int32,
    "negative_source": pl.Utf8,  # "instruction_negative" | "mined"
    # the achievability check (see ifir_pipeline.achievability); null when no check was configured
    "swap_probability": pl.Float32,  # the calibrated model's probability that a truthful I' exists
    "swap_achievable": pl.Boolean,  # the verdict: a recorded LLM verdict where one exists, else the model's
    "achievability_reason": pl.Utf8,  # null when achievable, else a reason code (achievability.REASONS)
    "verdict_source": pl.Utf8,  # "recorded" | "model"
}


@dataclass(frozen=True)
class MiningConfig:
    k: int = 3  # negatives per example
    candidates: int = 100  # depth of each ranked list before fusion
    rank_min: int = 3  # fused-rank window to take negatives from (1-based, inclusive)
    rank_max: int = 50
    max_score_ratio: float = 0.95  # drop a candidate whose dense score exceeds this share of the positive's
    near_duplicate_cosine: float = 0.98
    near_duplicate_hash: bool = True  # drop candidates whose normalized text equals the positive's
    rrf_k: int = 60
    use_bm25: bool = True
    use_dense: bool = True
    query_chunk: int = 512

    def __post_init__(self) -> None:
        problems = [
            f"{name} must be >= 1, got {getattr(self, name)}"
            for name in ("k", "candidates", "rank_min", "rank_max", "rrf_k", "query_chunk")
            if getattr(self, name) < 1
        ]
        if self.rank_min > self.rank_max:
            problems.append(f"rank_min ({self.rank_min}) is above rank_max ({self.rank_max})")
        if self.max_score_ratio <= 0:
            problems.append(f"max_score_ratio must be > 0, got {self.max_score_ratio}")
        if not (self.use_bm25 or self.use_dense):
            problems.append("enable at least one of use_bm25 and use_dense")
        if problems:
            raise ValueError("MiningConfig: " + "; ".join(problems))


@dataclass
class GuardCounts:
    known_positive: int = 0
    score_margin: int = 0
    near_duplicate_hash: int = 0
    near_duplicate_cosine: int = 0
    outside_window: int = 0
    not_achievable: int = 0  # usable candidates the achievability check turned down (when it ranks)
    skipped: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, int]:
        d = asdict(self)
        skipped = d.pop("skipped")
        d.update({f"skipped_{k}": v for k, v in skipped.items()})
        return d


def dense_topk(queries: np.ndarray, docs: np.ndarray, k: int, chunk: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by inner product (embeddings are normalized), ``chunk`` queries at a time into one reused
    ``(chunk, n_docs)`` score buffer."""
    k = min(k, docs.shape[0])
    d = _tensor(docs)
    idx_out = np.empty((queries.shape[0], k), dtype=np.int64)
    val_out = np.empty((queries.shape[0], k), dtype=np.float32)
    buf = torch.empty((min(chunk, queries.shape[0]), d.shape[0]), dtype=d.dtype)
    with torch.inference_mode():
        for start in range(0, queries.shape[0], chunk):
            q = _tensor(queries[start : start + chunk])
            scores = buf[: q.shape[0]]
            torch.mm(q, d.T, out=scores)
            vals, idx = torch.topk(scores, k, dim=1)
            idx_out[start : start + chunk] = idx.numpy()
            val_out[start : start + chunk] = vals.numpy()
    return idx_out, val_out


def _tensor(a: np.ndarray) -> torch.Tensor:
    """A float32 tensor over ``a`` without a copy where its strides allow (e.g. rows of a mapped cache file)."""
    if a.dtype == np.float32 and a.ndim == 2 and a.strides[1] == 4 and a.strides[0] % 4 == 0:
        return torch.from_numpy(a)
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def bm25_topk(query_texts: list[str], doc_texts: list[str], k: int) -> np.ndarray:
    import bm25s

    k = min(k, len(doc_texts))
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(doc_texts, stopwords="en", show_progress=False), show_progress=False)
    q_tokens = bm25s.tokenize(query_texts, stopwords="en", show_progress=False)
    idx, _ = retriever.retrieve(q_tokens, k=k, show_progress=False, n_threads=0)
    return np.asarray(idx, dtype=np.int64)


def rrf_fuse(lists: list[np.ndarray], rrf_k: int) -> np.ndarray:
    """Reciprocal-rank fusion of per-query ranked index lists, vectorized.

    Returns an ``(n_queries, width)`` array of document indices in fused order (score descending, ties by
    index), padded with -1 where a query's lists share documents.
    """
    n = lists[0].shape[0]
    if len(lists) == 1:
        return np.asarray(lists[0], dtype=np.int64)
    n_docs = int(max(int(x.max(initial=0)) for x in lists)) + 1
    cand = np.concatenate([np.asarray(x, dtype=np.int64) for x in lists], axis=1)
    contrib = np.concatenate([np.broadcast_to(1.0 / (rrf_k + np.arange(1, x.shape[1] + 1)), x.shape) for x in lists], 1)
    keep = cand >= 0
    rows = np.broadcast_to(np.arange(n)[:, None], cand.shape)[keep]
    keys, inverse = np.unique(rows * n_docs + cand[keep], return_inverse=True)
    score = np.bincount(inverse, weights=contrib[keep])
    rows, docs = keys // n_docs, keys % n_docs
    order = np.lexsort((docs, -score, rows))
    rows, docs = rows[order], docs[order]
    per_row = np.bincount(rows, minlength=n)
    out = np.full((n, int(per_row.max(initial=0))), -1, dtype=np.int64)
    out[rows, np.arange(rows.size) - np.repeat(np.cumsum(per_row) - per_row, per_row)] = docs
    return out


# first failing guard per candidate, in the order they are checked; 0 means the candidate is usable
_OK, _POSITIVE, _WINDOW, _HASH, _COSINE, _MARGIN, _PADDING = range(7)
_GUARD_NAMES = {
    _POSITIVE: "known_positive",
    _WINDOW: "outside_window",
    _HASH: "near_duplicate_hash",
    _COSINE: "near_duplicate_cosine",
    _MARGIN: "score_margin",
}


def mine_negatives(
    examples: pl.DataFrame,
    documents: pl.DataFrame,
    query_emb: np.ndarray,
    doc_emb: np.ndarray,
    known_positives: dict[str, set[str]],
    config: MiningConfig,
    progress: Callable[[str], None] | None = None,
    scorer=None,
    check_emb: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[pl.DataFrame, GuardCounts]:
    """Mine ``config.k`` negatives per example from ``documents`` (one source's corpus).

    ``query_emb`` rows align with ``examples``, ``doc_emb`` rows with ``documents``; both normalized.
    ``known_positives`` maps query_id to every document judged relevant for it. The guards run as array
    masks over the fused candidate matrix, ``query_chunk`` queries at a time.

    Without ``scorer`` the first ``k`` usable candidates in fused order are kept, and a candidate counts against
    a guard only if it was reached before the example had its ``k`` negatives. With a
    :class:`~ifir_pipeline.achievability.CandidateScorer`, every usable candidate in the window is checked:
    the ``k`` kept are those that pass (recorded-achievable first, then by swap probability), and guard counts
    cover the whole window. ``check_emb`` are the check's own (query, document) embeddings when its encoder
    differs from mining's.
    """
    counts = GuardCounts()
    if documents.height == 0:
        raise ValueError("cannot mine negatives: the corpus is empty")
    if examples.height == 0:
        return pl.DataFrame(schema=NEGATIVE_SCHEMA), counts
    if query_emb.shape[0] != examples.height or doc_emb.shape[0] != documents.height:
        raise ValueError(
            f"embeddings do not align: {query_emb.shape[0]} query vectors for {examples.height} examples, "
            f"{doc_emb.shape[0]} document vectors for {documents.height} documents"
        )
    doc_ids = documents["doc_id"].to_list()
    doc_index = {d: i for i, d in enumerate(doc_ids)}
    hash_id = _normalized_text_ids(documents) if config.near_duplicate_hash else None
    depth = min(config.candidates, len(doc_ids))
    lists, dense_idx, bm25_idx = [], None, None
    if config.use_dense:
        dense_idx, _ = dense_topk(query_emb, doc_emb, depth, config.query_chunk)
        lists.append(dense_idx)
        if progress:
            progress(f"dense top-{depth} done for {examples.height} queries")
    if config.use_bm25:
        bm25_idx = bm25_topk(examples["query"].to_list(), documents["text"].to_list(), depth)
        lists.append(bm25_idx)
        if progress:
            progress(f"BM25 top-{depth} done for {examples.height} queries")
    fused = rrf_fuse(lists, config.rrf_k)

    n = examples.height
    doc_texts = documents["text"].to_list()
    cq_emb, cd_emb = check_emb if check_emb is not None else (query_emb, doc_emb)
    pos_idx = np.array([doc_index.get(p, -1) for p in examples["positive_id"].to_list()], dtype=np.int64)
    missing = pos_idx < 0
    if missing.any():
        counts.skipped["positive_not_in_corpus"] = int(missing.sum())
    # the source's own instruction negatives come first (rank 0), up to k of them
    inst_rows, inst_docs = [], []
    if "instruction_negative_ids" in examples.columns:
        for i, negs in enumerate(examples["instruction_negative_ids"].to_list()):
            if negs and not missing[i]:
                for j in [doc_index[x] for x in dict.fromkeys(negs) if x in doc_index][: config.k]:
                    inst_rows.append(i)
                    inst_docs.append(j)
    i_rows, i_docs = np.asarray(inst_rows, dtype=np.int64), np.asarray(inst_docs, dtype=np.int64)
    need = config.k - np.bincount(i_rows, minlength=n)
    need[missing] = 0
    # every (example, judged-relevant document) pair, as flat keys row * n_docs + doc
    n_docs = len(doc_ids)
    pos_keys = [i * n_docs + pos_idx[i] for i in range(n) if not missing[i]]
    for i, qid in enumerate(examples["query_id"].to_list()):
        pos_keys += [i * n_docs + doc_index[p] for p in known_positives.get(qid, ()) if p in doc_index]
    pos_keys = np.unique(np.asarray(pos_keys, dtype=np.int64))
    inst_keys = i_rows * n_docs + i_docs

    width = fused.shape[1]
    rank = np.arange(1, width + 1)
    in_window = (rank >= config.rank_min) & (rank <= config.rank_max)
    q_t, d_t = _tensor(query_emb), _tensor(doc_emb)
    pos_score_all = np.zeros(n, dtype=np.float32)
    ok_pos = ~missing
    pos_score_all[ok_pos] = np.einsum("ij,ij->i", query_emb[ok_pos], doc_emb[pos_idx[ok_pos]])
    if scorer is not None:
        scorer.prepare(examples, doc_ids, doc_texts, [doc_texts[j] if j >= 0 else "" for j in pos_idx.tolist()])
        check_qp = pos_score_all.copy()
        if check_emb is not None:
            check_qp[ok_pos] = np.einsum("ij,ij->i", cq_emb[ok_pos], cd_emb[pos_idx[ok_pos]])
        cq_t, cd_t = _tensor(cq_emb), _tensor(cd_emb)
    taken_prob: list[np.ndarray] = []
    taken_rec: list[np.ndarray] = []
    guard_hits = np.zeros(7, dtype=np.int64)
    taken_rows, taken_cols, taken_scores = [], [], []
    step = max(1, min(config.query_chunk, 8_000_000 // max(width * doc_emb.shape[1], 1)))  # ~32 MB gathers
    with torch.inference_mode():
        for start in range(0, n, step):
            sl = slice(start, min(start + step, n))
            cand = fused[sl]
            rows = np.arange(sl.start, sl.stop)
            pos = np.where(pos_idx[sl] >= 0, pos_idx[sl], 0)  # rows without a positive are masked below
            safe = np.where(cand >= 0, cand, 0)
            keys = rows[:, None] * n_docs + safe
            vecs = d_t[torch.from_numpy(safe)]  # (chunk, width, dim)
            q_score = torch.einsum("cwd,cd->cw", vecs, q_t[sl]).numpy()
            pos_cos = torch.einsum("cwd,cd->cw", vecs, d_t[torch.from_numpy(pos)]).numpy()
            p_score = pos_score_all[sl][:, None]
            code = np.full(cand.shape, _OK, dtype=np.int8)
            checks = (
                (_MARGIN, (p_score > 0) & (q_score > config.max_score_ratio * p_score)),
                (_COSINE, pos_cos >= config.near_duplicate_cosine),
                (_HASH, _same_id(hash_id, safe, pos)),
                (_WINDOW, np.broadcast_to(~in_window, cand.shape)),
                (_POSITIVE, np.isin(keys, pos_keys)),
                (_PADDING, (cand < 0) | missing[sl][:, None] | np.isin(keys, inst_keys)),
            )
            for value, mask in checks:  # applied last-first, so the earliest failing guard wins
                code[mask] = value
            usable = code == _OK
            if scorer is not None:
                if check_emb is not None:
                    cvecs = cd_t[torch.from_numpy(safe)]
                    c_qn = torch.einsum("cwd,cd->cw", cvecs, cq_t[sl]).numpy()
                    c_pn = torch.einsum("cwd,cd->cw", cvecs, cd_t[torch.from_numpy(pos)]).numpy()
                else:
                    c_qn, c_pn = q_score, pos_cos
                prob, rec = scorer.score(rows, cand, usable, c_qn, check_qp[sl][:, None], c_pn, pos_idx[sl])
                passing = usable & scorer.passes(prob, rec, c_pn)
            if scorer is None or not scorer.rank:
                before = np.cumsum(usable, axis=1) - usable  # usable candidates ahead of this one
                reached = before < need[sl][:, None]
                guard_hits += np.bincount(code[reached & ~usable].ravel(), minlength=7)
                r, c = np.nonzero(usable & reached)
                if scorer is not None:
                    counts.not_achievable += int((~passing[r, c]).sum())
            else:
                guard_hits += np.bincount(code[~usable].ravel(), minlength=7)
                counts.not_achievable += int((usable & ~passing).sum())
                # recorded-achievable first, then by probability; fused order breaks ties
                key = np.where(passing, np.where(rec == 1, 2.0, 0.0) + np.nan_to_num(prob, nan=0.0), -np.inf)
                order = np.argsort(-key, axis=1, kind="stable")
                ranked_ok = np.take_along_axis(passing, order, axis=1)
                keep_sorted = ranked_ok & ((np.cumsum(ranked_ok, axis=1) - ranked_ok) < need[sl][:, None])
                r, pos_in_order = np.nonzero(keep_sorted)
                c = order[r, pos_in_order]
            if scorer is not None:
                taken_prob.append(prob[r, c])
                taken_rec.append(rec[r, c])
            taken_rows.append(r + sl.start)
            taken_cols.append(c)
            taken_scores.append(q_score[r, c])
    for value, name in _GUARD_NAMES.items():
        setattr(counts, name, int(guard_hits[value]))

    t_rows, t_cols = np.concatenate(taken_rows), np.concatenate(taken_cols)
    t_docs = fused[t_rows, t_cols]
    have = np.bincount(t_rows, minlength=n) + (config.k - need)
    short = (have < config.k) & ~missing
    if short.any():
        reason = (
            "corpus_smaller_than_k"
            if n_docs <= config.k
            else "fewer_than_k_achievable"
            if scorer is not None and scorer.rank
            else "too_few_candidates_after_guards"
        )
        counts.skipped[reason] = int(short.sum())

    all_rows = np.concatenate([i_rows, t_rows])
    all_docs = np.concatenate([i_docs, t_docs])
    out = pl.DataFrame(
        {
            "row": all_rows,
            "negative_id": [doc_ids[j] for j in all_docs.tolist()],
            "rank": np.concatenate([np.zeros(i_rows.size, dtype=np.int64), t_cols + 1]),
            "negative_score": np.concatenate(
                [np.einsum("ij,ij->i", query_emb[i_rows], doc_emb[i_docs]), np.asarray(np.concatenate(taken_scores))]
            ),
            "bm25_rank": _rank_in(bm25_idx, all_rows, all_docs),
            "dense_rank": _rank_in(dense_idx, all_rows, all_docs),
            "negative_source": ["instruction_negative"] * i_rows.size + ["mined"] * t_rows.size,
            **_verdict_columns(scorer, i_rows, i_docs, taken_prob, taken_rec, cq_emb, cd_emb, pos_idx, t_rows, t_docs),
        },
        schema_overrides={"negative_id": pl.Utf8},
    )
    meta = (
        examples.select("example_id", "query_id", "positive_id")
        .with_row_index("row")
        .with_columns(pl.Series("positive_score", pos_score_all), pl.col("row").cast(pl.Int64))
    )
    # within an example: instruction negatives, then the kept negatives in preference order (fused rank
    # without a check; recorded-achievable then swap probability with one)
    order = ["row", "seq"] if scorer is not None and scorer.rank else ["row", "rank", "seq"]
    out = out.with_row_index("seq").join(meta, on="row", how="left").sort(order)
    out = out.with_columns(pl.int_range(pl.len()).over("row").alias("preference"))
    return out.select([pl.col(c).cast(t) for c, t in NEGATIVE_SCHEMA.items()]), counts


def _verdict_columns(scorer, i_rows, i_docs, taken_prob, taken_rec, cq_emb, cd_emb, pos_idx, t_rows, t_docs) -> dict:
    """The check's columns for instruction negatives (scored here) and mined negatives (scored in the loop)."""
    total = i_rows.size + t_rows.size
    if scorer is None:
        return {
            "swap_probability": pl.Series([None] * total, dtype=pl.Float32),
            "swap_achievable": pl.Series([None] * total, dtype=pl.Boolean),
            "achievability_reason": pl.Series([None] * total, dtype=pl.Utf8),
            "verdict_source": pl.Series([None] * total, dtype=pl.Utf8),
        }
    probs, recs, pns = [], [], []
    if i_rows.size:
        pos = np.where(pos_idx[i_rows] >= 0, pos_idx[i_rows], 0)
        qn = np.einsum("ij,ij->i", cq_emb[i_rows], cd_emb[i_docs])
        qp = np.einsum("ij,ij->i", cq_emb[i_rows], cd_emb[pos])
        pn = np.einsum("ij,ij->i", cd_emb[pos], cd_emb[i_docs])
        cov_n = np.array([scorer.coverage(int(r), int(d)) for r, d in zip(i_rows, i_docs, strict=True)])
        cov_p = np.array([scorer.coverage(int(r), int(p)) for r, p in zip(i_rows, pos, strict=True)])
        probs.append(scorer.model.probability(scorer.model.feature_matrix(qn, qp, pn, cov_n, cov_p)))
        recs.append(np.array([scorer.recorded_verdict(int(r), int(d)) for r, d in zip(i_rows, i_docs, strict=True)]))
        pns.append(pn)
    if t_rows.size:
        probs.append(np.concatenate(taken_prob))
        recs.append(np.concatenate(taken_rec))
        pos = np.where(pos_idx[t_rows] >= 0, pos_idx[t_rows], 0)
        pns.append(np.einsum("ij,ij->i", cd_emb[pos], cd_emb[t_docs]))
    prob = np.concatenate(probs) if probs else np.zeros(0)
    rec = np.concatenate(recs) if recs else np.zeros(0, dtype=np.int8)
    pn = np.concatenate(pns) if pns else np.zeros(0)
    reasons = [scorer.reason(float(p), int(r), float(c)) for p, r, c in zip(prob, rec, pn, strict=True)]
    return {
        "swap_probability": pl.Series(prob, dtype=pl.Float32),
        "swap_achievable": pl.Series([x is None for x in reasons], dtype=pl.Boolean),
        "achievability_reason": pl.Series(reasons, dtype=pl.Utf8),
        "verdict_source": pl.Series(["recorded" if r != 0 else "model" for r in rec.tolist()], dtype=pl.Utf8),
    }


def _normalized_text_ids(documents: pl.DataFrame) -> np.ndarray:
    """Documents equal up to case, punctuation and spacing share an id. The pool's ``text_hash`` column
    (computed once by ``source_corpora``) is used when present."""
    column = documents["text_hash"] if "text_hash" in documents.columns else None
    if column is None:
        column = pl.Series([text_hash(t) for t in documents["text"].to_list()])
    return column.rank("dense").to_numpy().astype(np.int64)


def _same_id(ids: np.ndarray | None, cand: np.ndarray, pos: np.ndarray) -> np.ndarray:
    if ids is None:
        return np.zeros(cand.shape, dtype=bool)
    return ids[cand] == ids[pos][:, None]


def _rank_in(ranked: np.ndarray | None, rows: np.ndarray, docs: np.ndarray) -> pl.Series:
    """1-based position of each (row, doc) in a per-query ranked list, null where absent."""
    if ranked is None or rows.size == 0:
        return pl.Series([None] * rows.size, dtype=pl.Int32)
    hit = ranked[rows] == docs[:, None]
    return pl.Series(np.where(hit.any(1), hit.argmax(1) + 1, 0), dtype=pl.Int32).replace(0, None)
