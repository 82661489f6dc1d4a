"""Scoring through mteb 2.x: FollowIR-format sets as InstructionReranking tasks, BEIR sets as Retrieval.

Local folders become mteb tasks whose metadata mirrors FollowIR's (type ``InstructionReranking``, main score
p-MRR) with ``dataset.revision`` set to the folder's content hash, so results carry what they were computed
on. Scores are mteb's own; per-query values (p-MRR from mteb's rank functions, nDCG from mteb's per-query
scores) are kept for paired bootstrap intervals.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from ifir_pipeline.loaders import FollowIRSet, RetrievalSet

logger = logging.getLogger(__name__)

PER_QUERY_SCHEMA = {"task": pl.Utf8, "query_id": pl.Utf8, "metric": pl.Utf8, "value": pl.Float64}


def _metadata(name: str, revision: str, task_type: str, main_score: str, description: str):
    from mteb.abstasks.task_metadata import TaskMetadata

    return TaskMetadata(
        name=name,
        description=description,
        reference=None,
        dataset={"path": f"local/{name}", "revision": revision},
        type=task_type,
        category="t2t",
        modalities=["text"],
        eval_splits=["test"],
        eval_langs=["eng-Latn"],
        main_score=main_score,
        date=None,
        domains=None,
        task_subtypes=[],
        license=None,
        annotations_creators="derived",
        dialect=[],
        sample_creation="found",
        bibtex_citation="",
    )


def _retrieval_split(corpus: pl.DataFrame, queries: dict[str, str], qrels: pl.DataFrame, top_ranked: dict | None):
    from datasets import Dataset

    rel: dict[str, dict[str, int]] = {}
    for qid, did, score in qrels.iter_rows():
        rel.setdefault(qid, {})[did] = int(score)
    return {
        "corpus": Dataset.from_dict(
            {"id": corpus["doc_id"].to_list(), "title": corpus["title"].to_list(), "text": corpus["text"].to_list()}
        ),
        "queries": Dataset.from_dict({"id": list(queries), "text": list(queries.values())}),
        "relevant_docs": rel,
        "top_ranked": top_ranked,
    }


def make_followir_task(data: FollowIRSet):
    """An mteb InstructionReranking task over a local FollowIR-format set."""
    from mteb._evaluators.retrieval_metrics import evaluate_p_mrr_change
    from mteb.abstasks.retrieval import AbsTaskRetrieval

    changed = {
        qid: ids for qid, ids in zip(data.qrel_diff["query_id"], data.qrel_diff["doc_ids"].to_list(), strict=True)
    }
    top = {qid: ids for qid, ids in zip(data.top_ranked["query_id"], data.top_ranked["doc_ids"].to_list(), strict=True)}

    class LocalFollowIRTask(AbsTaskRetrieval):
        metadata = _metadata(
            data.name, data.revision, "InstructionReranking", "p-MRR", f"Local FollowIR-format set {data.name}"
        )
        captured: dict[str, Any] = {}

        def load_data(self, num_proc=None, **kwargs):  # noqa: ARG002
            if self.data_loaded:
                return
            self.dataset = {"default": {"test": _retrieval_split(data.corpus, data.query_texts(), data.qrels, top)}}
            self.data_loaded = True

        def task_specific_scores(self, scores, qrels, results, hf_split, hf_subset):
            self.captured["run"] = results
            self.captured["per_query"] = scores
            return evaluate_p_mrr_change(qrels, results, changed, self.k_values)

    task = LocalFollowIRTask()
    task.changed_qrels = changed
    return task


def make_hub_followir_task(data: FollowIRSet):
    """mteb's own FollowIR task (Core17/News21/Robust04), reading ``data.hub_path``: its loader and its
    ``task_specific_scores`` (p-MRR) run unchanged; this subclass only keeps the run and per-query scores."""
    from ifir_pipeline.loaders.followir import mteb_followir_task

    base = type(mteb_followir_task(data.hub_task, data.hub_path))

    class CapturingTask(base):
        captured: dict[str, Any] = {}

        def task_specific_scores(self, scores, qrels, results, hf_split, hf_subset):
            self.captured["run"] = results
            self.captured["per_query"] = scores
            return super().task_specific_scores(scores, qrels, results, hf_split, hf_subset)

    CapturingTask.__name__ = base.__name__
    task = CapturingTask()
    task.changed_qrels = {
        qid: ids for qid, ids in zip(data.qrel_diff["query_id"], data.qrel_diff["doc_ids"].to_list(), strict=True)
    }
    return task


def make_retrieval_task(data: RetrievalSet):
    from mteb.abstasks.retrieval import AbsTaskRetrieval

    from ifir_pipeline.hashing import frame_hash

    revision = frame_hash(data.qrels) + frame_hash(data.queries)[:8]
    queries = dict(zip(data.queries["query_id"], data.queries["text"], strict=True))

    class LocalRetrievalTask(AbsTaskRetrieval):
        metadata = _metadata(data.name, revision, "Retrieval", "ndcg_at_10", f"Local BEIR-format set {data.name}")
        captured: dict[str, Any] = {}

        def load_data(self, num_proc=None, **kwargs):  # noqa: ARG002
            if self.data_loaded:
                return
            self.dataset = {"default": {"test": _retrieval_split(data.corpus, queries, data.qrels, None)}}
            self.data_loaded = True

        def task_specific_scores(self, scores, qrels, results, hf_split, hf_subset):
            self.captured["per_query"] = scores
            return {}

    return LocalRetrievalTask()


def per_query_pmrr(run: dict[str, dict[str, float]], changed: dict[str, list[str]]) -> dict[str, float]:
    """p-MRR per query, with mteb's own rank and rank-score functions (their mean is mteb's p-MRR)."""
    from mteb._evaluators.retrieval_metrics import get_rank_from_dict, rank_score

    out = {}
    for qid, docs in changed.items():
        og, new = run.get(f"{qid}-og"), run.get(f"{qid}-changed")
        if og is None or new is None:
            continue
        vals = []
        for d in docs:
            r0, _ = get_rank_from_dict(og, d)
            r1, _ = get_rank_from_dict(new, d)
            vals.append(rank_score({"og_rank": r0, "new_rank": r1, "change": int(r0 - r1)}))
        out[qid] = float(np.mean(vals))
    return out


@dataclass
class TaskScores:
    task: str
    revision: str
    main: dict[str, float]
    per_query: pl.DataFrame
    mteb_result: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, float]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}_"))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[f"{prefix}{k}"] = float(v)
    return out


def cached_encoder(model, cache_dir):
    """A sentence-transformers model as mteb wraps it, with its embeddings cached in ``cache_dir`` (one folder
    per checkpoint): each evaluation corpus is encoded once per checkpoint (see :mod:`ifir_pipeline.eval_cache`)."""
    from mteb.models.sentence_transformer_wrapper import SentenceTransformerEncoderWrapper

    from ifir_pipeline.eval_cache import CheckpointEmbeddingCache

    return CheckpointEmbeddingCache(SentenceTransformerEncoderWrapper(model), cache_dir)


def quick_subset(data: RetrievalSet, n_queries: int = 100, n_docs: int = 1500, seed: int = 0) -> RetrievalSet:
    """A documented small version of a general retrieval set, for smoke runs at small budgets: the first
    ``n_queries`` queries (in id order) against their judged documents plus a seeded sample of the others, up to
    ``n_docs``. Its nDCG@10 is higher than the full set's and not comparable to it."""
    import numpy as np

    qids = sorted(data.queries["query_id"].to_list())[:n_queries]
    qrels = data.qrels.filter(pl.col("query_id").is_in(qids))
    judged = set(qrels["doc_id"])
    others = sorted(set(data.corpus["doc_id"]) - judged)
    rng = np.random.default_rng(seed)
    extra = rng.choice(len(others), size=max(0, min(len(others), n_docs - len(judged))), replace=False)
    keep = judged | {others[i] for i in extra.tolist()}
    return RetrievalSet(
        data.corpus.filter(pl.col("doc_id").is_in(list(keep))),
        data.queries.filter(pl.col("query_id").is_in(qids)),
        qrels,
        f"{data.name}-quick",
    )


def score(
    model, data: FollowIRSet | RetrievalSet, batch_size: int = 64, show_progress: bool = False, cache_dir=None
) -> TaskScores:
    """Run mteb on one set; FollowIR scores are reported x100 (the FollowIR paper's scale). With ``cache_dir``
    the model's embeddings are cached there (see :func:`cached_encoder`)."""
    import mteb

    if cache_dir is not None:
        model = cached_encoder(model, cache_dir)

    is_followir = isinstance(data, FollowIRSet)
    if is_followir:
        task = make_hub_followir_task(data) if data.hub_task else make_followir_task(data)
    else:
        task = make_retrieval_task(data)
    t0 = time.perf_counter()
    result = mteb.evaluate(
        model,
        task,
        cache=None,
        overwrite_strategy="always",
        encode_kwargs={"batch_size": batch_size},
        show_progress_bar=show_progress,
    )
    seconds = time.perf_counter() - t0
    task_result = result.task_results[0]
    raw = task_result.scores["test"][0]
    flat = _flat(raw)
    rows = []
    if is_followir:
        main = {
            "p-MRR": 100 * flat["p-MRR"],
            "og_nDCG@5": 100 * flat["og_ndcg_at_5"],
            "og_MAP": 100 * flat["og_map_at_1000"],
            "changed_nDCG@5": 100 * flat["changed_ndcg_at_5"],
            "changed_MAP": 100 * flat["changed_map_at_1000"],
        }
        pq = per_query_pmrr(task.captured["run"], task.changed_qrels)
        rows += [(data.name, q, "p-MRR", 100 * v) for q, v in pq.items()]
        for qid, metrics in task.captured["per_query"].items():
            if qid.endswith("-og") and "ndcg_cut_5" in metrics:
                rows.append((data.name, qid[: -len("-og")], "og_nDCG@5", 100 * float(metrics["ndcg_cut_5"])))
    else:
        main = {"nDCG@10": 100 * flat["ndcg_at_10"], "MAP@100": 100 * flat.get("map_at_100", float("nan"))}
        for qid, metrics in task.captured["per_query"].items():
            if "ndcg_cut_10" in metrics:
                rows.append((data.name, qid, "nDCG@10", 100 * float(metrics["ndcg_cut_10"])))
    per_query = pl.DataFrame(rows, schema=PER_QUERY_SCHEMA, orient="row")
    return TaskScores(
        task=data.name,
        revision=data.revision if is_followir else task.metadata.dataset["revision"],
        main=main,
        per_query=per_query,
        mteb_result=task_result.to_dict(),
        seconds=round(seconds, 2),
    )


def seed_query_bootstrap(a: np.ndarray, b: np.ndarray, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of ``a - b`` and its 95% interval by a two-level bootstrap: seeds, then queries.

    ``a`` is ``(seeds_a, queries)`` and ``b`` is ``(seeds_b, queries)`` over the same queries (columns). Each
    replicate draws seeds with replacement for each side (training seeds of two recipes are not paired), then
    one shared draw of queries (queries are paired), and takes the difference of the means. With one seed
    per side it is the paired query bootstrap; spread between seeds widens the interval.
    """
    a, b = np.atleast_2d(np.asarray(a, dtype=float)), np.atleast_2d(np.asarray(b, dtype=float))
    if a.shape[1] != b.shape[1] or a.shape[1] == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    n_q = a.shape[1]
    qi = rng.integers(0, n_q, size=(n_boot, n_q))
    sa = rng.integers(0, a.shape[0], size=(n_boot, a.shape[0]))
    sb = rng.integers(0, b.shape[0], size=(n_boot, b.shape[0]))
    ma = a[sa].mean(axis=1)  # (n_boot, queries): each replicate's seed-averaged per-query values
    mb = b[sb].mean(axis=1)
    diff = np.take_along_axis(ma, qi, axis=1).mean(axis=1) - np.take_along_axis(mb, qi, axis=1).mean(axis=1)
    return float(a.mean() - b.mean()), float(np.percentile(diff, 2.5)), float(np.percentile(diff, 97.5))


def paired_bootstrap(a: np.ndarray, b: np.ndarray, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of ``a - b`` over queries and its 95% percentile interval (queries resampled with replacement)."""
    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if diff.size == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, diff.size, size=(n_boot, diff.size))
    means = diff[idx].mean(axis=1)
    return float(diff.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))
