"""``followir_scores``: score checkpoints on every evaluation set; the base model's scores are cached.

Tables: ``summary`` (``seed: Int64, task, metric, value: Float64``) and ``per_query`` (``budget: Int64,
recipe, seed: Int64, task, query_id, metric, value``); every task result is also written in mteb's results
format so it compares with public results.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from ifir_pipeline.evaluation import score
from ifir_pipeline.hashing import stable_hash
from ifir_pipeline.loaders import FollowIRSet, RetrievalSet
from ifir_pipeline.storage import atomic_write_json, atomic_write_parquet

SUMMARY_SCHEMA = {"seed": pl.Int64, "task": pl.Utf8, "metric": pl.Utf8, "value": pl.Float64}


def _mteb_version() -> str:
    import mteb

    return mteb.__version__


def _embedding_cache(root: Path | None, checkpoint: dict[str, Any]) -> Path | None:
    """A folder per checkpoint weights (computed once per checkpoint dict)."""
    if root is None:
        return None
    if "_emb_key" not in checkpoint:
        from ifir_pipeline.versions import checkpoint_version

        checkpoint["_emb_key"] = checkpoint_version([checkpoint["path"]])
    return Path(root) / checkpoint["_emb_key"]


def score_checkpoints(
    checkpoints: list[dict[str, Any]],
    eval_sets: list[FollowIRSet | RetrievalSet],
    budget: int,
    recipe: str,
    results_dir: Path,
    base_cache_dir: Path,
    batch_size: int = 64,
    log: Callable[[str], None] = print,
    embedding_cache_dir: Path | None = None,
) -> tuple[dict[str, pl.DataFrame], dict[str, Any]]:
    """Score every checkpoint on every set; with ``embedding_cache_dir`` each checkpoint's embeddings of an
    evaluation corpus are cached under a folder named by its weights' hash (mteb's CachedEmbeddingWrapper)."""
    from ifir_pipeline.encoders import load_encoder

    summary_rows, per_query_parts, timings = [], [], {}
    version = _mteb_version()
    for ck in checkpoints:
        seed = ck["seed"]
        model = None
        for data in eval_sets:
            revision = data.revision if isinstance(data, FollowIRSet) else "beir"
            cache_key = stable_hash([ck["path"], data.name, revision, version, len(data.queries), data.qrels.height])
            cached = base_cache_dir / cache_key
            if recipe == "base" and (cached / "per_query.parquet").exists():
                log(f"{data.name}: base scores reused from cache {cached}")
                main = json.loads((cached / "main.json").read_text())
                per_query = pl.read_parquet(cached / "per_query.parquet")
                mteb_result = json.loads((cached / "mteb.json").read_text())
            else:
                if model is None:
                    model = load_encoder(ck["path"])
                log(
                    f"scoring {recipe} seed {seed} on {data.name} "
                    f"({data.corpus.height} documents, {data.queries.height} queries)"
                )
                res = score(model, data, batch_size=batch_size, cache_dir=_embedding_cache(embedding_cache_dir, ck))
                main, per_query, mteb_result = res.main, res.per_query, res.mteb_result
                timings[f"{data.name}_seconds"] = res.seconds
                log(f"{data.name}: " + ", ".join(f"{k} {v:.2f}" for k, v in main.items()) + f" ({res.seconds:.0f}s)")
                if recipe == "base":
                    atomic_write_json(cached / "main.json", main)
                    atomic_write_json(cached / "mteb.json", mteb_result)
                    atomic_write_parquet(cached / "per_query.parquet", per_query)
            atomic_write_json(results_dir / f"seed-{seed}" / f"{data.name}.json", mteb_result)
            for metric, value in main.items():
                summary_rows.append((seed if seed is not None else 0, data.name, metric, float(value)))
            per_query_parts.append(
                per_query.with_columns(
                    pl.lit(budget, dtype=pl.Int64).alias("budget"),
                    pl.lit(recipe).alias("recipe"),
                    pl.lit(seed if seed is not None else 0, dtype=pl.Int64).alias("seed"),
                )
            )
    summary = pl.DataFrame(summary_rows, schema=SUMMARY_SCHEMA, orient="row")
    per_query = pl.concat(per_query_parts).select("budget", "recipe", "seed", "task", "query_id", "metric", "value")
    means = summary.group_by("task", "metric").agg(pl.col("value").mean()).sort("task", "metric")
    stats = {
        "mteb_version": version,
        "means": {f"{t}/{m}": round(v, 3) for t, m, v in means.iter_rows()},
        "dataset_revisions": {d.name: (d.revision if isinstance(d, FollowIRSet) else "beir-local") for d in eval_sets},
        **timings,
    }
    return {"summary": summary, "per_query": per_query}, stats
