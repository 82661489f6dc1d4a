from dagster import AssetExecutionContext, MaterializeResult, asset

from ifir_pipeline.defs._metadata import preview, stats_metadata
from ifir_pipeline.pool import build_source_corpora
from ifir_pipeline.resources import DataSources


@asset(
    group_name="synthesis",
    code_version="pool-v1",
    description="Training sources (queries, documents, optional instructions) with evaluation data guarded out, "
    "in one seeded, stratified, nested sample order.",
    kinds={"polars"},
)
def source_corpora(context: AssetExecutionContext, sources: DataSources):
    tables, stats = build_source_corpora(sources.train_specs(), sources.eval_specs(), sources.seed)
    context.log.info(
        f"pool: {stats['examples']} examples, {stats['documents']} documents; leakage guard removed "
        f"{stats['leakage_removed_queries']} queries and {stats['leakage_removed_documents']} documents"
    )
    context.add_output_metadata(
        {
            **stats_metadata(stats),
            "dagster/row_count": stats["examples"],
            "preview": preview(tables["examples"].drop("instruction_negative_ids")),
        }
    )
    return tables


__all__ = ["source_corpora", "MaterializeResult"]
