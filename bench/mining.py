"""Hard-negative mining: ours against sentence-transformers' ``mine_hard_negatives`` on the same work.

Workloads: SciFact (5,183 abstracts, the 809 train claims) and a synthetic scale test (``--scale`` passages
made of real SciFact sentences, 2,000 queries). Same encoder (packaged MiniLM, max_seq_length 128), same
k (3), same rank window (top 50), same relative margin (5%), dense candidates only so the selections are
comparable; our extra guards (near-duplicates) are switched off for the comparison. Each method runs in
its own process (peak RSS is per method), cold (no embedding cache) and warm (each one's own cache filled
by a previous run: our EmbeddingCache, ST's ``cache_folder``).

Usage: python bench/mining.py [--scale 50000] [--queries 2000]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import peak_rss_mb, run_worker  # noqa: E402

K, RANGE_MAX, MARGIN, MAX_LEN, BATCH = 3, 50, 0.05, 128, 64


def workload(name: str, scale: int, n_queries: int, work: Path) -> Path:
    """Write (queries, positives, corpus) as JSON once; both methods read the same file."""
    path = work / f"{name}.json"
    if path.exists():
        return path
    from ifir_pipeline.loaders import bundled_path, load_scifact_claims, load_scifact_corpus

    corpus = load_scifact_corpus(bundled_path("scifact", "corpus_train.csv"))
    docs = [f"{t} {x}" for t, x in zip(corpus["title"], corpus["text"], strict=True)]
    if name == "scifact":
        claims = load_scifact_claims(bundled_path("scifact", "claims_train.csv"))
        first = claims.qrels.group_by("query_id", maintain_order=True).first()
        text = dict(zip(corpus["doc_id"], docs, strict=True))
        qtext = dict(zip(claims.queries["query_id"], claims.queries["text"], strict=True))
        queries = [qtext[q] for q in first["query_id"]]
        positives = [text[d] for d in first["doc_id"]]
    else:
        rng = random.Random(0)
        sentences = [s for x in corpus["text"] for s in x.split(". ") if len(s) > 40]
        # one real sentence per passage (SciFact has about 50k), de-duplicated; short passages keep the
        # scale test's encoding time within minutes on 2 cores
        docs = list(dict.fromkeys(s.strip() + "." for s in sentences))[:scale]
        if len(docs) < scale:
            docs += [f"{docs[i % len(docs)]} ({i})" for i in range(scale - len(docs))]
        picks = rng.sample(range(len(docs)), n_queries)
        queries = [" ".join(docs[i].split()[:12]) for i in picks]
        positives = [docs[i] for i in picks]
    path.write_text(json.dumps({"queries": queries, "positives": positives, "corpus": docs}))
    return path


def worker(method: str, data_path: str, cache_dir: str) -> None:
    from ifir_pipeline.encoders import load_encoder

    data = json.loads(Path(data_path).read_text())
    model = load_encoder("packaged", max_seq_length=MAX_LEN)
    t0 = time.perf_counter()
    if method == "ours":
        import numpy as np
        import polars as pl

        from ifir_pipeline.encoders import EmbeddingCache
        from ifir_pipeline.hashing import text_hash
        from ifir_pipeline.mining import MiningConfig, mine_negatives

        corpus = data["corpus"]
        cache = EmbeddingCache(cache_dir or None)
        d_emb = cache.encode(model, corpus, [text_hash(t) for t in corpus], batch_size=BATCH)
        q_emb = cache.encode(model, data["queries"], ["q:" + text_hash(t) for t in data["queries"]], batch_size=BATCH)
        index = {t: i for i, t in enumerate(corpus)}
        docs = pl.DataFrame(
            {"doc_id": [str(i) for i in range(len(corpus))], "source": "s", "title": "", "text": corpus}
        )
        ex = pl.DataFrame(
            {
                "example_id": [str(i) for i in range(len(data["queries"]))],
                "query_id": [str(i) for i in range(len(data["queries"]))],
                "query": data["queries"],
                "positive_id": [str(index[p]) for p in data["positives"]],
                "instruction_negative_ids": [[] for _ in data["queries"]],
            },
            schema_overrides={"instruction_negative_ids": pl.List(pl.Utf8)},
        )
        cfg = MiningConfig(
            k=K,
            candidates=RANGE_MAX + 1,
            rank_min=1,
            rank_max=RANGE_MAX + 1,
            max_score_ratio=1 - MARGIN,
            near_duplicate_cosine=1.01,
            use_bm25=False,
        )
        out, _ = mine_negatives(ex, docs, q_emb, d_emb, {}, cfg)
        chosen: dict[int, list[str]] = {}
        for qid, neg in zip(out["query_id"], out["negative_id"], strict=True):
            chosen.setdefault(int(qid), []).append(corpus[int(neg)])
        negatives = [chosen.get(i, []) for i in range(len(data["queries"]))]
        _ = np
    else:
        from datasets import Dataset
        from sentence_transformers.util import mine_hard_negatives

        ds = Dataset.from_dict({"anchor": data["queries"], "positive": data["positives"]})
        res = mine_hard_negatives(
            ds,
            model,
            corpus=data["corpus"],
            range_max=RANGE_MAX,
            relative_margin=MARGIN,
            num_negatives=K,
            sampling_strategy="top",
            batch_size=BATCH,
            output_format="n-tuple",
            verbose=False,
            cache_folder=cache_dir or None,
        )
        by_anchor = {r["anchor"]: [r[f"negative_{j}"] for j in range(1, K + 1)] for r in res}
        negatives = [by_anchor.get(q, []) for q in data["queries"]]
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": round(seconds, 2), "peak_rss_mb": round(peak_rss_mb(), 1), "negatives": negatives}))


def overlap(a: list[list[str]], b: list[list[str]]) -> float:
    vals = [len(set(x) & set(y)) / K for x, y in zip(a, b, strict=True) if x or y]
    return sum(vals) / max(len(vals), 1)


def compare(name: str, data: Path, work: Path, modes: tuple[str, ...] = ("cold", "warm")) -> dict:
    row: dict = {}
    for mode in modes:
        res = {}
        for method in ("ours", "st"):
            cache = str(work / f"cache-{name}-{method}") if mode == "warm" else ""
            if mode == "warm":  # fill the cache first, untimed
                run_worker(__file__, method, str(data), cache)
            res[method] = run_worker(__file__, method, str(data), cache)
            print(
                f"{name} {mode} {method}: {res[method]['seconds']} s, peak RSS {res[method]['peak_rss_mb']} MB",
                flush=True,
            )
        row[mode] = {
            "ours_s": res["ours"]["seconds"],
            "st_s": res["st"]["seconds"],
            "speedup": round(res["st"]["seconds"] / res["ours"]["seconds"], 2),
            "ours_rss_mb": res["ours"]["peak_rss_mb"],
            "st_rss_mb": res["st"]["peak_rss_mb"],
            "overlap_at_k": round(overlap(res["ours"]["negatives"], res["st"]["negatives"]), 3),
        }
    return row


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--worker", nargs=3, metavar=("METHOD", "DATA", "CACHE"))
    p.add_argument("--scale", type=int, default=50_000)
    p.add_argument("--queries", type=int, default=2_000)
    p.add_argument("--skip-scale", action="store_true")
    p.add_argument("--warm-scale", action="store_true", help="also time the scale test with warm caches")
    args = p.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    work = Path(tempfile.mkdtemp(prefix="ifir-bench-mining-"))
    results = {"scifact": compare("scifact", workload("scifact", 0, 0, work), work)}
    if not args.skip_scale:
        modes = ("cold", "warm") if args.warm_scale else ("cold",)
        results[f"synthetic_{args.scale}"] = compare(
            "scale", workload("scale", args.scale, args.queries, work), work, modes
        )
    print(json.dumps(results, indent=1))
    head = results.get(f"synthetic_{args.scale}", results["scifact"])
    warm = head.get("warm", results["scifact"]["warm"])
    print(
        json.dumps(
            {
                "ours_s": head["cold"]["ours_s"],
                "peer_s": head["cold"]["st_s"],
                "speedup": head["cold"]["speedup"],
                "warm_speedup": warm["speedup"],
                "ours_rss_mb": head["cold"]["ours_rss_mb"],
                "peer_rss_mb": head["cold"]["st_rss_mb"],
                "overlap_at_k": head["cold"]["overlap_at_k"],
            }
        )
    )


if __name__ == "__main__":
    main()
