"""Blocking checks on quality_checked_pairs. They report what the asset's GX suites and gate found."""

from dagster import AssetCheckResult, AssetCheckSeverity, MetadataValue, asset_check

from ifir_pipeline.defs.quality_checked_pairs.assets import quality_checked_pairs
from ifir_pipeline.partitions import budget_partitions


def _gx_result(gx: dict) -> dict:
    return {"evaluated_expectations": gx["evaluated"], "failed_expectations": MetadataValue.json(gx["failed"])}


@asset_check(
    asset=quality_checked_pairs,
    blocking=True,
    partitions_def=budget_partitions,
    description="GX suite: the accepted-pairs schema, non-empty texts within bounds (instructions up to "
    "QualitySettings.max_instruction_chars, 1,200 by default), unique pair ids, unique (query, instruction) per "
    "view, I' different from I and token Jaccard(I, I') at most max_instruction_similarity (0.9).",
)
def pairs_expectations(quality_checked_pairs: dict) -> AssetCheckResult:
    gx = quality_checked_pairs["gate"]["gx_pairs"]
    return AssetCheckResult(passed=bool(gx["success"]), metadata=_gx_result(gx))


@asset_check(
    asset=quality_checked_pairs,
    blocking=True,
    partitions_def=budget_partitions,
    description="GX suite: no evaluation query, instruction or document (of every evaluation set, FollowIR hub "
    "tasks included when configured) in the accepted pairs.",
)
def no_evaluation_leakage(quality_checked_pairs: dict) -> AssetCheckResult:
    gate = quality_checked_pairs["gate"]
    gx = gate["gx_leakage"]
    return AssetCheckResult(
        passed=bool(gx["success"]),
        metadata={**_gx_result(gx), "fingerprinted": MetadataValue.json(gate.get("eval_fingerprints", {}))},
    )


@asset_check(
    asset=quality_checked_pairs,
    blocking=True,
    partitions_def=budget_partitions,
    description="Of the synthesized pairs that can swap, the share that passed verification is at least "
    "QualitySettings.min_accepted_share (0.5 by default); pairs that cannot swap are counted apart.",
)
def accepted_share(quality_checked_pairs: dict) -> AssetCheckResult:
    gate = quality_checked_pairs["gate"]
    return AssetCheckResult(
        passed=bool(gate["pass_rate_ok"]),
        metadata={
            "pass_rate": gate["pass_rate"],
            "rejection_reasons": MetadataValue.json(quality_checked_pairs["stats"]["rejection_reasons"]),
        },
    )


@asset_check(
    asset=quality_checked_pairs,
    blocking=False,
    partitions_def=budget_partitions,
    description="Enough pairs passed for every recipe: `budget` accepted pairs (instruction_only, diverse, "
    "no_instruction) and budget/2 (dual_view). A warning: a recipe without its pairs refuses to train; the "
    "metadata lists which recipes are ready.",
)
def budget_filled(quality_checked_pairs: dict) -> AssetCheckResult:
    gate = quality_checked_pairs["gate"]
    ready = gate.get("recipes_ready", {})
    return AssetCheckResult(
        passed=bool(gate["budget_filled"]),
        severity=AssetCheckSeverity.WARN,
        metadata={
            "accepted": gate["accepted"],
            "budget": gate["budget"],
            "recipes_ready": MetadataValue.json(ready),
            "recipes_short_of_pairs": MetadataValue.json(sorted(r for r, ok in ready.items() if not ok)),
        },
    )


quality_checks = [pairs_expectations, no_evaluation_leakage, accepted_share, budget_filled]
