import polars as pl
from dagster import AssetExecutionContext, Failure, asset

from ifir_pipeline.defs._metadata import preview, stats_metadata
from ifir_pipeline.errors import BudgetExceededError
from ifir_pipeline.pairs import synthesis_inputs
from ifir_pipeline.partitions import budget_partitions
from ifir_pipeline.resources import ArtifactStore, SynthesisSettings
from ifir_pipeline.synthesis.backends import make_backend
from ifir_pipeline.synthesis.cache import ResponseCache
from ifir_pipeline.synthesis.prompt import POLARITY_REVERSAL_PROMPT_VERSION
from ifir_pipeline.synthesis.runner import synthesize


@asset(
    group_name="synthesis",
    partitions_def=budget_partitions,
    code_version=POLARITY_REVERSAL_PROMPT_VERSION,
    pool="llm_calls",
    description="For each (q, I, d+, d-) in the budget's sample, a complementary instruction I' under which "
    "d- is relevant and d+ is not (polarity reversal). Cached by content hash: a call is never paid twice.",
    kinds={"polars", "anthropic"},
)
def inverted_instructions(
    context: AssetExecutionContext,
    source_corpora: dict,
    mined_negatives: pl.DataFrame,
    synthesis: SynthesisSettings,
    store: ArtifactStore,
):
    budget = int(context.partition_key)
    inputs = synthesis_inputs(
        source_corpora["examples"], mined_negatives, source_corpora["documents"], budget, synthesis.oversample
    )
    backend = make_backend(synthesis, source_corpora["documents"], store, context.log.info)
    cache = ResponseCache(store.cache_dir("synthesis") / f"{synthesis.backend}.sqlite")
    try:
        frame, stats = synthesize(inputs, backend, cache, context.log.info)
    except BudgetExceededError as exc:
        raise Failure(description=str(exc)) from exc
    ok = frame.filter(pl.col("status") == "ok")
    context.add_output_metadata(
        {
            **stats_metadata(stats),
            "dagster/row_count": frame.height,
            "budget": budget,
            "prompt_version": POLARITY_REVERSAL_PROMPT_VERSION,
            "preview": preview(ok.select("query", "instruction_og", "instruction_reversed", "style"), max_chars=160),
            "failed_preview": preview(
                frame.filter(pl.col("status") != "ok").select("pair_id", "failure_reason", "rationale")
            ),
        }
    )
    return frame
