"""Retraining: new pairs for a budget request training and scoring of that budget's trained recipes, once."""

from dagster import AssetKey, RunRequest, SensorEvaluationContext, SkipReason, asset_sensor, define_asset_job

from ifir_pipeline.partitions import budget_recipe_key, budget_recipe_partitions
from ifir_pipeline.training import CORE_TRAINED_RECIPES

train_and_score_job = define_asset_job(
    "train_and_score",
    selection=["trained_checkpoint", "followir_scores"],
    partitions_def=budget_recipe_partitions,
    tags={"ifir/gpu": "0"},
)


@asset_sensor(asset_key=AssetKey("quality_checked_pairs"), job=train_and_score_job, minimum_interval_seconds=30)
def retrain_on_new_pairs(context: SensorEvaluationContext, asset_event):
    """One run per trained recipe of the budget whose pairs changed; skipped when its quality gate failed.

    The asset sensor's cursor makes each materialization count once; the run key
    makes a repeated evaluation of the same event request nothing new.
    """
    mat = asset_event.dagster_event.event_specific_data.materialization
    budget = asset_event.dagster_event.partition
    gate = mat.metadata.get("gate_passed")
    if budget is None:
        return SkipReason("materialization without a budget partition")
    if gate is None or not gate.value:
        return SkipReason(f"quality gate failed for budget {budget}: not retraining")
    return [
        RunRequest(
            run_key=f"{asset_event.run_id}:{asset_event.timestamp}:{budget}:{recipe}",
            partition_key=budget_recipe_key(budget, recipe),
            tags={"ifir/trigger": "new_pairs", "ifir/budget": budget},
        )
        for recipe in CORE_TRAINED_RECIPES
    ]
