"""The one Definitions object: seven assets, the quality gate's checks, the retraining sensor, jobs."""

from __future__ import annotations

import os
from typing import Any

from dagster import Definitions, EnvVar, PipesSubprocessClient, define_asset_job

from ifir_pipeline.defs.budget_report.assets import budget_report
from ifir_pipeline.defs.followir_scores.assets import followir_scores
from ifir_pipeline.defs.inverted_instructions.assets import inverted_instructions
from ifir_pipeline.defs.mined_negatives.assets import mined_negatives
from ifir_pipeline.defs.quality_checked_pairs.assets import quality_checked_pairs
from ifir_pipeline.defs.quality_checked_pairs.checks import quality_checks
from ifir_pipeline.defs.quality_checked_pairs.sensors import retrain_on_new_pairs, train_and_score_job
from ifir_pipeline.defs.source_corpora.assets import source_corpora
from ifir_pipeline.defs.trained_checkpoint.assets import trained_checkpoint
from ifir_pipeline.io_manager import ArtifactIOManager
from ifir_pipeline.partitions import budget_partitions
from ifir_pipeline.resources import (
    AchievabilitySettings,
    ArtifactStore,
    DataSources,
    EncoderResource,
    EvaluationSettings,
    QualitySettings,
    SynthesisSettings,
    TrainingSettings,
    default_root,
)

ASSETS = [
    source_corpora,
    mined_negatives,
    inverted_instructions,
    quality_checked_pairs,
    trained_checkpoint,
    followir_scores,
    budget_report,
]

prepare_pool_job = define_asset_job("prepare_pool", selection=["source_corpora", "mined_negatives"])
synthesize_pairs_job = define_asset_job(
    "synthesize_pairs", selection=["inverted_instructions", "quality_checked_pairs"], partitions_def=budget_partitions
)
report_job = define_asset_job("report", selection=["budget_report"])


def build_resources(root: str | None = None, **overrides: Any) -> dict[str, Any]:
    """Embedded defaults (local files, offline writer, packaged encoder); ``overrides`` replace any of them."""
    bucket = os.environ.get("IFIR_S3_BUCKET") or None  # S3 storage when set, local files otherwise
    endpoint = os.environ.get("IFIR_S3_ENDPOINT_URL") or None
    store = ArtifactStore(root=root or default_root(), s3_bucket=bucket, s3_endpoint_url=endpoint)
    api_key = EnvVar("ANTHROPIC_API_KEY") if os.environ.get("ANTHROPIC_API_KEY") else None
    resources: dict[str, Any] = {
        "store": store,
        "io_manager": ArtifactIOManager(root=store.asset_root(), s3_bucket=bucket, s3_endpoint_url=endpoint),
        "sources": DataSources(
            bundled=[x for x in os.environ.get("IFIR_TRAIN_SOURCES", "").split(",") if x.strip()],
            weighting=os.environ.get("IFIR_SOURCE_WEIGHTING", "yield"),
        ),
        "encoder": EncoderResource(),
        "synthesis": SynthesisSettings(
            backend=os.environ.get("IFIR_SYNTHESIS_BACKEND", "recorded"),
            api_key=api_key,
            base_url=os.environ.get("ANTHROPIC_BASE_URL") or None,
        ),
        "quality": QualitySettings(
            verifier=os.environ.get("IFIR_VERIFIER", "offline"),
            judge_api_key=api_key,
            judge_base_url=os.environ.get("ANTHROPIC_BASE_URL") or None,
        ),
        "achievability": AchievabilitySettings(enabled=os.environ.get("IFIR_ACHIEVABILITY", "on") != "off"),
        "training": TrainingSettings(),
        "evaluation": EvaluationSettings(),
        "pipes_subprocess_client": PipesSubprocessClient(),
    }
    resources.update(overrides)
    return resources


def build_assets(resources: dict[str, Any]) -> list:
    """The assets with code versions that include the settings they depend on (see ``versions``)."""
    from ifir_pipeline.versions import code_versions

    versions = code_versions(resources)
    return [
        a.map_asset_specs(lambda spec: spec.replace_attributes(code_version=versions[spec.key.path[-1]]))
        for a in ASSETS
    ]


def build_definitions(root: str | None = None, **overrides: Any) -> Definitions:
    resources = build_resources(root, **overrides)
    return Definitions(
        assets=build_assets(resources),
        asset_checks=quality_checks,
        sensors=[retrain_on_new_pairs],
        jobs=[prepare_pool_job, synthesize_pairs_job, train_and_score_job, report_job],
        resources=resources,
    )


defs = build_definitions()
