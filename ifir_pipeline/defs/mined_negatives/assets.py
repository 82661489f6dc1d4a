from dagster import AssetExecutionContext, asset

from ifir_pipeline.defs._metadata import preview, stats_metadata
from ifir_pipeline.encoders import EmbeddingCache
from ifir_pipeline.mining import MiningConfig, mine_pool
from ifir_pipeline.resources import ArtifactStore, EncoderResource


@asset(
    group_name="synthesis",
    code_version="mining-v1",
    description="Hard negatives per example: BM25 + dense candidates fused by RRF, a rank window, and "
    "false-negative guards. Source-provided instruction negatives come first.",
    kinds={"polars", "torch"},
)
def mined_negatives(
    context: AssetExecutionContext, source_corpora: dict, encoder: EncoderResource, store: ArtifactStore
):
    model = encoder.load(max_seq_length=encoder.mining_max_seq_length)
    cache = EmbeddingCache(store.cache_dir("embeddings"))
    frame, stats = mine_pool(
        source_corpora["examples"], source_corpora["documents"], model, cache, MiningConfig(), context.log.info
    )
    context.add_output_metadata({**stats_metadata(stats), "dagster/row_count": frame.height, "preview": preview(frame)})
    return frame
