import polars as pl
from dagster import AssetExecutionContext, DataVersion, MetadataValue, Output, asset

from ifir_pipeline.defs._metadata import stats_metadata
from ifir_pipeline.evaluation import quick_subset
from ifir_pipeline.loaders import FollowIRSet, load_eval_set
from ifir_pipeline.partitions import budget_recipe_partitions
from ifir_pipeline.report import to_markdown
from ifir_pipeline.resources import ArtifactStore, DataSources, EvaluationSettings
from ifir_pipeline.scoring import score_checkpoints
from ifir_pipeline.versions import SCORING_CODE, content_version


def eval_sets(sources: DataSources, evaluation: EvaluationSettings) -> list:
    sets = [load_eval_set(s) for s in sources.eval_specs()]
    sets += [load_eval_set(spec) for spec in evaluation.hub_specs()]
    if not evaluation.general:
        sets = [s for s in sets if isinstance(s, FollowIRSet)]
    if evaluation.general_size not in ("full", "quick"):
        raise ValueError(f"EvaluationSettings.general_size must be 'full' or 'quick', got {evaluation.general_size!r}")
    if evaluation.general_size == "quick":
        sets = [s if isinstance(s, FollowIRSet) else quick_subset(s) for s in sets]
    return sets


@asset(
    group_name="evaluation",
    partitions_def=budget_recipe_partitions,
    code_version=SCORING_CODE,
    description="FollowIR scores through mteb (p-MRR, og/changed nDCG@5 and MAP, x100) and general retrieval "
    "(nDCG@10) per seed, with per-query values for bootstrap intervals and mteb-format result files.",
    kinds={"mteb"},
)
def followir_scores(
    context: AssetExecutionContext,
    trained_checkpoint: dict,
    sources: DataSources,
    evaluation: EvaluationSettings,
    store: ArtifactStore,
):
    budget, recipe = int(trained_checkpoint["budget"]), trained_checkpoint["recipe"]
    tables, stats = score_checkpoints(
        trained_checkpoint["checkpoints"],
        eval_sets(sources, evaluation),
        budget,
        recipe,
        store.path("mteb_results", str(budget), recipe),
        store.cache_dir("base_scores"),
        evaluation.batch_size,
        context.log.info,
        embedding_cache_dir=store.cache_dir("eval_embeddings"),
    )
    wide = tables["summary"].pivot(on="metric", index=["task", "seed"], values="value").sort("task", "seed")
    headline = {k.split("/")[1] + f" ({k.split('/')[0]})": v for k, v in stats["means"].items()}
    lineage = trained_checkpoint.get("lineage") or {}
    meta = {
        "budget": budget,
        "recipe": recipe,
        "pairs_hash": lineage.get("pairs_hash"),
        "training_code_version": trained_checkpoint.get("code_version"),
        "scoring_code_version": SCORING_CODE,
        **stats,
    }
    return Output(
        {**tables, "meta": meta},
        data_version=DataVersion(content_version(tables["summary"])),
        metadata={
            **stats_metadata({k: v for k, v in stats.items() if k != "means"}),
            **{k: MetadataValue.float(float(v)) for k, v in headline.items()},
            "scores": MetadataValue.md(to_markdown(wide.with_columns(pl.selectors.float().round(2)))),
            "checkpoint_paths": MetadataValue.json([c["path"] for c in trained_checkpoint["checkpoints"]]),
        },
    )
