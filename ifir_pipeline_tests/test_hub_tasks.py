"""FollowIR's real sets through mteb's own task classes, tested on a local mirror of the hub repository layout.

The mirror is a folder laid out like ``mteb/Core17InstructionRetrieval`` (parquet files per config and a README
whose YAML lists the configs corpus, queries, instruction, default, top_ranked, qrel_diff), cut from the
bundled FollowIR-format dev set. The code path is the one a user with the hub runs: mteb's class for
Core17InstructionRetrieval, its loader and its p-MRR; only the dataset path points at the mirror.
"""

import json
from pathlib import Path

import polars as pl
import pytest

from ifir_pipeline.loaders import SourceSpec, load_eval_set, load_followir_local

CONFIGS = {
    "corpus": ("corpus", "corpus"),
    "queries": ("queries", "queries"),
    "instruction": ("instruction", "instruction"),
    "default": ("data", "test"),
    "top_ranked": ("top_ranked", "top_ranked"),
    "qrel_diff": ("qrel_diff", "qrel_diff"),
}


def write_hub_mirror(src: Path, out: Path) -> Path:
    """A local dataset repository in the layout of mteb/Core17InstructionRetrieval, from a FollowIR folder."""
    s = load_followir_local(src)
    frames = {
        "corpus": s.corpus.select(pl.col("doc_id").alias("_id"), "title", "text"),
        "queries": s.queries.select(pl.col("query_id").alias("_id"), "text"),
        "instruction": s.instructions.select(pl.col("query_id").alias("query-id"), "instruction"),
        "default": s.qrels.select(
            pl.col("query_id").alias("query-id"), pl.col("doc_id").alias("corpus-id"), pl.col("score").cast(pl.Float64)
        ),
        "top_ranked": s.top_ranked.select(pl.col("query_id").alias("query-id"), pl.col("doc_ids").alias("corpus-ids")),
        "qrel_diff": s.qrel_diff.select(pl.col("query_id").alias("query-id"), pl.col("doc_ids").alias("corpus-ids")),
    }
    lines = ["---", "configs:"]
    for name, (folder, split) in CONFIGS.items():
        (out / folder).mkdir(parents=True, exist_ok=True)
        frames[name].write_parquet(out / folder / f"{split}-00000-of-00001.parquet")
        lines += [
            f"- config_name: {name}",
            "  data_files:",
            f"  - split: {split}",
            f"    path: {folder}/{split}-*.parquet",
        ]
    (out / "README.md").write_text("\n".join([*lines, "---", "", "A local mirror for tests.", ""]))
    return out


@pytest.fixture(scope="module")
def mirror(tiny_followir, tmp_path_factory):
    return write_hub_mirror(tiny_followir, tmp_path_factory.mktemp("Core17InstructionRetrieval"))


def test_mteb_loads_the_mirror_with_its_own_task_and_our_scores_equal_its_evaluate(mirror, encoder):
    import mteb

    from ifir_pipeline.evaluation import score
    from ifir_pipeline.loaders.followir import mteb_followir_task

    data = load_eval_set(
        SourceSpec("Core17InstructionRetrieval", "followir-hub", "Core17InstructionRetrieval", corpus_path=str(mirror))
    )
    pinned = type(mteb.get_task("Core17InstructionRetrieval")).metadata.dataset
    assert data.hub_task == "Core17InstructionRetrieval" and data.revision == pinned["revision"]
    assert pinned["path"] == "mteb/Core17InstructionRetrieval"  # mteb's own class is untouched
    assert data.queries.height == 8 and data.qrel_diff.height == 4
    ours = score(encoder, data)
    theirs = mteb.evaluate(
        encoder, mteb_followir_task("Core17InstructionRetrieval", str(mirror)), cache=None, overwrite_strategy="always"
    )
    raw = theirs.task_results[0].scores["test"][0]
    print(
        json.dumps(
            {
                "ours p-MRR": round(ours.main["p-MRR"], 4),
                "mteb p-MRR x100": round(100 * raw["p-MRR"], 4),
                "ours og_nDCG@5": round(ours.main["og_nDCG@5"], 4),
                "mteb og nDCG@5 x100": round(100 * raw["og"]["ndcg_at_5"], 4),
            }
        )
    )
    assert abs(ours.main["p-MRR"] - 100 * raw["p-MRR"]) < 1e-9
    assert abs(ours.main["og_nDCG@5"] - 100 * raw["og"]["ndcg_at_5"]) < 1e-9
    per_query = ours.per_query.filter(pl.col("metric") == "p-MRR")
    assert per_query.height == 4 and abs(per_query["value"].mean() - ours.main["p-MRR"]) < 1e-6


def test_the_leakage_guard_fingerprints_a_configured_hub_task(mirror, tiny_train_beir):
    from ifir_pipeline.pool import build_source_corpora

    hub = SourceSpec(
        "Core17InstructionRetrieval", "followir-hub", "Core17InstructionRetrieval", corpus_path=str(mirror)
    )
    tables, stats = build_source_corpora([SourceSpec("tiny", "beir", str(tiny_train_beir))], [hub], seed=1)
    fp = stats["eval_fingerprints"]["Core17InstructionRetrieval"]
    data = load_eval_set(hub)
    # the og/changed queries and their instructions, and every candidate document
    assert fp["queries"] == len(set(data.queries["text"]) | set(data.instructions["instruction"]))
    assert fp["documents"] == data.corpus.height
    assert set(tables["eval_hashes"]["set"]) == {"Core17InstructionRetrieval"}
