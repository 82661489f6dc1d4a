"""Mining a whole pool: every source against its own corpus (grouped sources group by group), embeddings from
the cache, the achievability check's encoder when it is not mining's, and the statistics the UI shows."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from ifir_pipeline.hashing import exact_hash
from ifir_pipeline.mining import NEGATIVE_SCHEMA, GuardCounts, MiningConfig, mine_negatives


def mine_pool(
    examples: pl.DataFrame,
    documents: pl.DataFrame,
    encoder,
    cache,
    config: MiningConfig,
    log: Callable[[str], None] = print,
    scorer=None,
    check_encoder=None,
) -> tuple[pl.DataFrame, dict]:
    """Mine every example against its own source's corpus, with embeddings from the cache.

    A source whose documents carry a ``group`` (a SQuAD article) is mined group by group: an example's
    negatives come from its positive's group. ``scorer`` (an achievability
    :class:`~ifir_pipeline.achievability.CandidateScorer`) ranks candidates; ``check_encoder`` is its encoder
    when that is not the mining encoder (its embeddings are cached too).
    """
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
        d_hashes = [exact_hash(t) for t in doc_texts]
        d_emb = cache.encode(encoder, doc_texts, d_hashes, progress=True)
        q_texts = ex["query"].to_list()
        q_hashes = ["q:" + exact_hash(t) for t in q_texts]
        q_emb = cache.encode(encoder, q_texts, q_hashes)
        check_emb = None
        if scorer is not None and check_encoder is not None:
            log(f"mining {source}: the achievability check's own encoder embeds the same texts")
            check_emb = (
                cache.encode(check_encoder, q_texts, q_hashes),
                cache.encode(check_encoder, doc_texts, d_hashes),
            )
        known_src = {k: {p for p in v if p.startswith(source + "/")} for k, v in known.items()}
        docs = docs.with_columns(pl.Series("text", doc_texts))
        for ex_rows, doc_rows, label in _mining_units(ex, docs):
            frame, counts = mine_negatives(
                ex[ex_rows],
                docs[doc_rows],
                q_emb[ex_rows],
                d_emb[doc_rows],
                known_src,
                config,
                log if label is None else None,
                scorer=scorer,
                check_emb=None if check_emb is None else (check_emb[0][ex_rows], check_emb[1][doc_rows]),
            )
            parts.append(frame)
            for k, v in counts.as_dict().items():
                if k.startswith("skipped_"):
                    totals.skipped[k[8:]] = totals.skipped.get(k[8:], 0) + v
                else:
                    setattr(totals, k, getattr(totals, k) + v)
        if "group" in docs.columns and docs["group"].null_count() < docs.height:
            log(f"mining {source}: negatives taken from each positive's own group ({docs['group'].n_unique()} groups)")
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
    if scorer is not None:
        stats["achievability"] = achievability_by_source(examples, out, totals)
    return out, stats


def _mining_units(ex: pl.DataFrame, docs: pl.DataFrame):
    """``(example rows, document rows, group)`` to mine together: the whole source, or one group at a time."""
    if "group" not in docs.columns or docs["group"].null_count() == docs.height:
        yield np.arange(ex.height), np.arange(docs.height), None
        return
    group_of = dict(zip(docs["doc_id"].to_list(), docs["group"].to_list(), strict=True))
    ex_group = np.array([group_of.get(p) or "" for p in ex["positive_id"].to_list()], dtype=object)
    doc_group = np.array([g or "" for g in docs["group"].to_list()], dtype=object)
    for g in sorted(set(ex_group.tolist())):
        yield np.nonzero(ex_group == g)[0], np.nonzero(doc_group == g)[0], g


def achievability_by_source(examples: pl.DataFrame, negatives: pl.DataFrame, totals: GuardCounts) -> dict:
    """Per source: examples, how many have an achievable negative, and where the verdicts came from."""
    per_source: dict[str, dict] = {}
    n_ex = dict(examples.group_by("source").len().iter_rows())
    with_src = negatives.join(examples.select("example_id", "source"), on="example_id", how="left")
    for source in sorted(n_ex):
        sub = with_src.filter(pl.col("source") == source)
        ok = sub.filter(pl.col("swap_achievable"))
        per_source[source] = {
            "examples": int(n_ex[source]),
            "examples_with_achievable_negative": int(ok["example_id"].n_unique()),
            "achievable_example_share": round(ok["example_id"].n_unique() / max(n_ex[source], 1), 4),
            "negatives_kept": sub.height,
            "recorded_verdicts": int((sub["verdict_source"] == "recorded").sum()),
        }
    return {"per_source": per_source, "candidates_turned_down": totals.not_achievable}
