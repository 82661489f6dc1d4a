import polars as pl
from dagster import AssetExecutionContext, DataVersion, Failure, Output, asset

from ifir_pipeline.defs._metadata import preview, stats_metadata
from ifir_pipeline.errors import WriterUnavailableError
from ifir_pipeline.hashing import frame_hash
from ifir_pipeline.pairs import quality_check
from ifir_pipeline.partitions import budget_partitions
from ifir_pipeline.resources import ArtifactStore, QualitySettings
from ifir_pipeline.versions import QUALITY_CODE, content_version


@asset(
    group_name="synthesis",
    partitions_def=budget_partitions,
    code_version=QUALITY_CODE,
    description="Accepted pairs (the first `budget` that pass label-swap verification and the GX suites) and "
    "every rejected pair with its reason. Its blocking checks gate training for this budget.",
    kinds={"polars", "great_expectations"},
)
def quality_checked_pairs(
    context: AssetExecutionContext,
    inverted_instructions: pl.DataFrame,
    source_corpora: dict,
    quality: QualitySettings,
    store: ArtifactStore,
):
    budget = int(context.partition_key)
    try:
        tables, stats = quality_check(
            inverted_instructions,
            source_corpora["documents"],
            source_corpora["eval_hashes"],
            budget,
            quality.verify(),
            quality.thresholds(),
            judge=quality.judge(store.cache_dir("synthesis"), context.log.info),
        )
    except WriterUnavailableError as exc:  # the judge could not answer: keep the previous materialization
        raise Failure(description=str(exc)) from exc
    gate = stats["gate"]
    context.log.info(
        f"budget {budget}: {stats['accepted']} accepted, pass rate {stats['pass_rate']:.1%}, "
        f"gate passed={gate['passed']}"
    )
    value = {**tables, "gate": gate, "stats": {k: v for k, v in stats.items() if k != "gate"}}
    version = content_version({"accepted": tables["accepted"], "gate": gate})
    return Output(
        value,
        data_version=DataVersion(version),
        metadata={
            "pairs_hash": frame_hash(tables["accepted"]),
            **stats_metadata({k: v for k, v in stats.items() if k != "gate"}),
            "gate_passed": gate["passed"],
            "dagster/row_count": stats["accepted"],
            "accepted_preview": preview(
                tables["accepted"].select("query", "instruction_og", "instruction_reversed", "style"), max_chars=140
            ),
            "rejected_preview": preview(
                tables["rejected"]
                .filter(pl.col("rejection_reason") != "over_budget")
                .select("query", "instruction_reversed", "rejection_reason"),
                max_chars=100,
            ),
        },
    )
