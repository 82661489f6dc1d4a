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
from ifir_pipeline.remote import EcsTraining
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

prepare_pool_job = define_asset_job(
    "prepare_pool",
    selection=["source_corpora", "mined_negatives"],
    description="Load every training source (evaluation data guarded out) and mine hard negatives that can truly "
    "swap. Run once before synthesis; re-run when sources or mining settings change.",
)
synthesize_pairs_job = define_asset_job(
    "synthesize_pairs",
    selection=["inverted_instructions", "quality_checked_pairs"],
    partitions_def=budget_partitions,
    description="For one budget: write I / I' for the budget's pairs and run the quality gate (its blocking checks "
    "decide whether the budget may train).",
)
report_job = define_asset_job(
    "report",
    selection=["budget_report"],
    description="Rebuild the budget report from every current followir_scores partition.",
)


def _sources_from_env() -> DataSources:
    """``IFIR_SOURCES``: a JSON file ``{"train": [...], "evaluation": [...]}`` of source specs (the same dicts
    as ``DataSources``); else the bundled sources, narrowed by ``IFIR_TRAIN_SOURCES`` and weighted by
    ``IFIR_SOURCE_WEIGHTING``."""
    import json
    from pathlib import Path

    from ifir_pipeline.errors import DataFormatError

    bundled = [x for x in os.environ.get("IFIR_TRAIN_SOURCES", "").split(",") if x.strip()]
    weighting = os.environ.get("IFIR_SOURCE_WEIGHTING", "yield")
    path = os.environ.get("IFIR_SOURCES")
    if not path:
        return DataSources(bundled=bundled, weighting=weighting)
    try:
        spec = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise DataFormatError(path, None, None, f"IFIR_SOURCES: cannot read a JSON object of sources ({exc})") from None
    if not isinstance(spec, dict) or set(spec) - {"train", "evaluation", "seed"}:
        raise DataFormatError(path, None, None, "IFIR_SOURCES: expected keys train, evaluation (and seed)")
    return DataSources(
        train=spec.get("train", []),
        evaluation=spec.get("evaluation", []),
        seed=spec.get("seed", 13),
        bundled=bundled,
        weighting=weighting,
    )


def build_resources(root: str | None = None, **overrides: Any) -> dict[str, Any]:
    """Embedded defaults (local files, offline writer, packaged encoder); ``overrides`` replace any of them."""
    bucket = os.environ.get("IFIR_S3_BUCKET") or None  # S3 storage when set, local files otherwise
    endpoint = os.environ.get("IFIR_S3_ENDPOINT_URL") or None
    store = ArtifactStore(root=root or default_root(), s3_bucket=bucket, s3_endpoint_url=endpoint)
    api_key = EnvVar("ANTHROPIC_API_KEY") if os.environ.get("ANTHROPIC_API_KEY") else None
    resources: dict[str, Any] = {
        "store": store,
        "io_manager": ArtifactIOManager(root=store.asset_root(), s3_bucket=bucket, s3_endpoint_url=endpoint),
        "sources": _sources_from_env(),
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
        "ecs_training": EcsTraining(),
    }
    resources.update(overrides)
    return resources


def build_assets(resources: dict[str, Any]) -> list:
    """The assets with code versions that include the settings they depend on (see ``versions``)."""
    from ifir_pipeline.versions import code_versions

    versions = code_versions(resources)
    kinds = configured_kinds(resources)
    return [
        a.map_asset_specs(
            lambda spec: spec.replace_attributes(
                code_version=versions[spec.key.path[-1]], kinds=kinds.get(spec.key.path[-1], spec.kinds)
            )
        )
        for a in ASSETS
    ]


def configured_kinds(resources: dict[str, Any]) -> dict[str, set[str]]:
    """Kinds that say what the configuration really uses (no "anthropic" badge on an offline writer)."""
    synthesis, quality, training = resources["synthesis"], resources["quality"], resources["training"]
    writers = {synthesis.backend, synthesis.fallback if synthesis.backend == "recorded" else synthesis.backend}
    llm = {"anthropic"} & writers
    return {
        "inverted_instructions": {"polars", *llm} | ({"huggingface"} if "local" in writers else set()),
        "quality_checked_pairs": {"polars", "great_expectations"}
        | ({"anthropic"} if quality.verifier == "anthropic" else set()),
        "trained_checkpoint": {"pytorch"} | ({"aws"} if training.execution == "pipes_ecs" else set()),
    }


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
