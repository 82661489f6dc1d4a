from dagster import AssetExecutionContext, DataVersion, MaterializeResult, Output, asset

from ifir_pipeline.defs._metadata import preview, stats_metadata
from ifir_pipeline.pool import build_source_corpora
from ifir_pipeline.resources import DataSources, EvaluationSettings
from ifir_pipeline.versions import POOL_CODE, content_version


@asset(
    group_name="synthesis",
    code_version=POOL_CODE,
    description="Training sources (queries, documents, optional instructions) with evaluation data guarded out, "
    "in one seeded, stratified, nested sample order.",
    kinds={"polars"},
)
def source_corpora(context: AssetExecutionContext, sources: DataSources, evaluation: EvaluationSettings):
    # every set the pipeline evaluates on is guarded out, FollowIR's hub tasks included when configured
    eval_specs = sources.eval_specs() + evaluation.hub_specs()
    tables, stats = build_source_corpora(sources.train_specs(), eval_specs, sources.seed)
    context.log.info(
        f"pool: {stats['examples']} examples, {stats['documents']} documents; leakage guard removed "
        f"{stats['leakage_removed_queries']} queries and {stats['leakage_removed_documents']} documents"
    )
    return Output(
        tables,
        data_version=DataVersion(content_version(tables)),
        metadata={
            **stats_metadata(stats),
            "dagster/row_count": stats["examples"],
            "preview": preview(tables["examples"].drop("instruction_negative_ids")),
        },
    )


__all__ = ["source_corpora", "MaterializeResult"]
