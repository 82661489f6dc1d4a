import polars as pl
from dagster import AssetExecutionContext, DataVersion, Failure, MetadataValue, Output, asset

from ifir_pipeline.defs._metadata import preview, stats_metadata
from ifir_pipeline.errors import BudgetExceededError, WriterUnavailableError
from ifir_pipeline.pairs import pool_capacity, synthesis_inputs
from ifir_pipeline.partitions import budget_partitions
from ifir_pipeline.resources import AchievabilitySettings, ArtifactStore, SynthesisSettings
from ifir_pipeline.synthesis.backends import make_backend
from ifir_pipeline.synthesis.cache import ResponseCache
from ifir_pipeline.synthesis.prompt import POLARITY_REVERSAL_PROMPT_VERSION
from ifir_pipeline.synthesis.runner import synthesize
from ifir_pipeline.versions import SYNTHESIS_CODE, synthesis_version


@asset(
    group_name="synthesis",
    partitions_def=budget_partitions,
    code_version=SYNTHESIS_CODE,
    pool="llm_calls",
    description="For each (q, I, d+, d-) in the budget's sample, a complementary instruction I' under which "
    "d- is relevant and d+ is not (polarity reversal). Pairs the achievability check turns down are not sent "
    "to the writer. The default writer replays recorded LLM answers (offline writer where none is recorded). "
    "Cached by content hash: a call is never paid twice.",
    kinds={"polars"},
)
def inverted_instructions(
    context: AssetExecutionContext,
    source_corpora: dict,
    mined_negatives: pl.DataFrame,
    synthesis: SynthesisSettings,
    achievability: AchievabilitySettings,
    store: ArtifactStore,
):
    budget = int(context.partition_key)
    examples, documents = source_corpora["examples"], source_corpora["documents"]
    inputs = synthesis_inputs(
        examples, mined_negatives, documents, budget, synthesis.oversample, achievable_first=achievability.enabled
    )
    capacity = pool_capacity(mined_negatives, examples)
    if achievability.enabled and capacity.get("achievable_pairs", budget) < budget:
        context.log.warning(
            f"budget {budget} cannot fill with achievable pairs: the pool holds {capacity['achievable_pairs']} "
            f"({capacity.get('achievable_by_source')}); add sources with on-topic negatives or raise mining's k"
        )
    backend = make_backend(synthesis, documents, store, context.log.info)
    control = None
    if synthesis.control_writer:
        control = (
            backend
            if synthesis.backend == "offline"
            else make_backend(synthesis, documents, store, context.log.info, "offline")
        )
    cache = ResponseCache(store.cache_dir("synthesis") / f"{synthesis.backend}.sqlite")
    try:
        frame, stats = synthesize(
            inputs, backend, cache, context.log.info, skip_not_achievable=achievability.enabled, control=control
        )
    except (BudgetExceededError, WriterUnavailableError) as exc:
        raise Failure(description=str(exc)) from exc
    if synthesis.record_to and synthesis.backend in ("anthropic", "local"):
        from ifir_pipeline.synthesis.recording import export_recording

        path = export_recording(frame, inputs, synthesis.record_to)
        stats["recorded_to"] = str(path)
        context.log.info(f"answers exported as a recording to {path}")
    stats["pool_capacity"] = capacity
    ok = frame.filter(pl.col("status") == "ok")
    return Output(
        frame,
        data_version=DataVersion(synthesis_version(frame)),
        metadata={
            **stats_metadata(stats),
            "dagster/row_count": frame.height,
            "budget": budget,
            "writer": MetadataValue.text(backend.model),
            "prompt_version": POLARITY_REVERSAL_PROMPT_VERSION,
            "preview": preview(
                ok.select("query", "instruction_og", "instruction_reversed", "style", "writer"), max_chars=160
            ),
            "not_achievable_preview": preview(
                frame.filter(pl.col("failure_reason").is_in(["not_achievable", "swap_not_achievable"])).select(
                    "pair_id", "source", "achievability_reason", "swap_probability", "rationale"
                )
            ),
            "failed_preview": preview(
                frame.filter((pl.col("status") == "failed") & (pl.col("failure_reason") != "not_achievable")).select(
                    "pair_id", "failure_reason", "rationale"
                )
            ),
        },
    )
