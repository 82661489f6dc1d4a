from dagster import AssetExecutionContext, Config, DataVersion, Output, asset
from pydantic import Field

from ifir_pipeline.defs._metadata import png_markdown, preview, stats_metadata
from ifir_pipeline.encoders import EmbeddingCache
from ifir_pipeline.mining import MiningConfig
from ifir_pipeline.mining_pool import mine_pool
from ifir_pipeline.report import score_histogram_png
from ifir_pipeline.resources import AchievabilitySettings, ArtifactStore, EncoderResource
from ifir_pipeline.versions import MINING_CODE, content_version

_DEFAULT = MiningConfig()


class MiningRunConfig(Config):
    """Mining knobs, editable in the launchpad; the defaults are ``MiningConfig``'s."""

    k: int = Field(default=_DEFAULT.k, ge=1, description="negatives per example")
    candidates: int = Field(default=_DEFAULT.candidates, ge=1, description="depth of each ranked list")
    rank_min: int = Field(default=_DEFAULT.rank_min, ge=1, description="fused-rank window start (1-based)")
    rank_max: int = Field(default=_DEFAULT.rank_max, ge=1, description="fused-rank window end (inclusive)")
    max_score_ratio: float = Field(
        default=_DEFAULT.max_score_ratio, gt=0, description="drop candidates scoring above this share of the positive"
    )
    near_duplicate_cosine: float = Field(default=_DEFAULT.near_duplicate_cosine, gt=0)
    near_duplicate_hash: bool = _DEFAULT.near_duplicate_hash
    rrf_k: int = Field(default=_DEFAULT.rrf_k, ge=1, description="reciprocal-rank fusion constant")
    use_bm25: bool = _DEFAULT.use_bm25
    use_dense: bool = _DEFAULT.use_dense
    query_chunk: int = Field(default=_DEFAULT.query_chunk, ge=1, description="queries per score block")

    def to_mining_config(self) -> MiningConfig:
        return MiningConfig(**{k: getattr(self, k) for k in MiningConfig.__dataclass_fields__})


@asset(
    group_name="synthesis",
    code_version=MINING_CODE,
    description="Hard negatives per example: BM25 + dense candidates fused by RRF, a rank window and "
    "false-negative guards, then the achievability check: the k kept are negatives whose labels can truly be "
    "swapped (recorded LLM verdicts first, then the calibrated model). Grouped sources (SQuAD articles) are "
    "mined within the positive's group. Source-provided instruction negatives come first.",
    kinds={"polars", "torch"},
)
def mined_negatives(
    context: AssetExecutionContext,
    config: MiningRunConfig,
    source_corpora: dict,
    encoder: EncoderResource,
    store: ArtifactStore,
    achievability: AchievabilitySettings,
):
    model = encoder.load(max_seq_length=encoder.mining_max_seq_length)
    cache = EmbeddingCache(store.cache_dir("embeddings"), log=context.log.warning)
    scorer = achievability.scorer()
    check_encoder = None
    if (scorer.model.encoder, scorer.model.max_seq_length) != (encoder.model, encoder.mining_max_seq_length):
        from ifir_pipeline.encoders import load_encoder

        check_encoder = load_encoder(scorer.model.encoder, max_seq_length=scorer.model.max_seq_length)
    frame, stats = mine_pool(
        source_corpora["examples"],
        source_corpora["documents"],
        model,
        cache,
        config.to_mining_config(),
        context.log.info,
        scorer=scorer,
        check_encoder=check_encoder,
    )
    stats["achievability_check"] = {
        **scorer.model.summary(),
        "enabled": achievability.enabled,
        "threshold": scorer.threshold,
        "recorded_verdicts": achievability.verdicts or "none",
    }
    metadata = {**stats_metadata(stats), "dagster/row_count": frame.height, "preview": preview(frame)}
    if frame.height:
        metadata["score_distribution"] = png_markdown(score_histogram_png(frame), "score distribution")
    return Output(frame, data_version=DataVersion(content_version(frame)), metadata=metadata)
