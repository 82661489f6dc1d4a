"""Retraining: new pairs for a budget request training and scoring of that budget's recipes, after the gate.

The sensor reads ``quality_checked_pairs`` materializations in order (its cursor is the last one handled) and,
for each, the evaluations of the blocking checks that ran on it (same run, same partition):
- all passed: one run per trained core recipe of that budget (run keys make each request once);
- one failed, or the run ended without evaluating them: skipped, with the reason in the tick;
- not evaluated yet and the run still going: the sensor waits (the cursor stays before it).
The first tick starts from "now": history is not replayed. To replay on purpose, set the cursor to 0 in the
sensor's page ("Set cursor") or with ``dagster sensor cursor retrain_on_new_pairs --set 0``.
"""

from __future__ import annotations

from dagster import (
    AssetCheckKey,
    AssetKey,
    AssetRecordsFilter,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    define_asset_job,
    sensor,
)
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from ifir_pipeline.partitions import budget_recipe_key, budget_recipe_partitions
from ifir_pipeline.training import CORE_TRAINED_RECIPES

PAIRS = AssetKey("quality_checked_pairs")
BLOCKING_CHECKS = ("pairs_expectations", "no_evaluation_leakage", "accepted_share")
FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}

train_and_score_job = define_asset_job(
    "train_and_score",
    selection=["trained_checkpoint", "followir_scores"],
    partitions_def=budget_recipe_partitions,
    tags={"ifir/gpu": "0"},
    description="Train one (budget, recipe) checkpoint per seed and score it on every evaluation set.",
)


def gate_verdict(instance, run_id: str, partition: str | None) -> tuple[str, str]:
    """``("passed" | "failed" | "pending", why)`` for the blocking checks of one materialization."""
    statuses = {}
    for name in BLOCKING_CHECKS:
        history = instance.event_log_storage.get_asset_check_execution_history(AssetCheckKey(PAIRS, name), limit=200)
        mine = [r for r in history if r.run_id == run_id and r.partition == partition]
        statuses[name] = mine[0].status if mine else None
    failed = sorted(n for n, s in statuses.items() if s == AssetCheckExecutionRecordStatus.FAILED)
    if failed:
        return "failed", f"blocking checks failed: {', '.join(failed)}"
    if all(s == AssetCheckExecutionRecordStatus.SUCCEEDED for s in statuses.values()):
        return "passed", "all blocking checks passed"
    run = instance.get_run_by_id(run_id) if run_id else None
    missing = sorted(n for n, s in statuses.items() if s != AssetCheckExecutionRecordStatus.SUCCEEDED)
    if run is None or run.status in FINISHED:
        return "failed", f"the run ended without evaluating {', '.join(missing)}: not gated, not retraining"
    return "pending", f"waiting for {', '.join(missing)}"


@sensor(
    job=train_and_score_job,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.STOPPED,
    description="Retrains a budget's recipes when its quality_checked_pairs materialization passed its blocking "
    "checks (pairs_expectations, no_evaluation_leakage, accepted_share); waits while they run, skips a failed "
    "gate. Starts from 'now' when first turned on. To replay earlier materializations, set its cursor to 0 "
    "(sensor page: Set cursor, or `dagster sensor cursor retrain_on_new_pairs --set 0`).",
)
def retrain_on_new_pairs(context: SensorEvaluationContext):
    instance = context.instance
    if context.cursor is None:
        latest = instance.fetch_materializations(PAIRS, limit=1).records
        start = latest[0].storage_id if latest else 0
        return SensorResult(
            skip_reason=SkipReason(
                f"first tick: starting from now ({'no' if not latest else 'earlier'} materializations are not "
                "replayed); set the cursor to 0 to replay them"
            ),
            cursor=str(start),
        )
    cursor = int(context.cursor)
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=PAIRS, after_storage_id=cursor), limit=100, ascending=True
    ).records
    requests, notes = [], []
    for rec in records:
        budget = rec.partition_key
        verdict, why = gate_verdict(instance, rec.run_id, budget)
        if verdict == "pending":
            notes.append(f"budget {budget}: {why}")
            break
        cursor = rec.storage_id
        if budget is None:
            notes.append("a materialization without a budget partition: skipped")
        elif verdict == "failed":
            notes.append(f"budget {budget}: {why}")
        else:
            requests += [
                RunRequest(
                    run_key=f"pairs-{rec.storage_id}:{recipe}",
                    partition_key=budget_recipe_key(budget, recipe),
                    tags={"ifir/trigger": "new_pairs", "ifir/budget": budget, "ifir/pairs_run": rec.run_id},
                )
                for recipe in CORE_TRAINED_RECIPES
            ]
    for note in notes:
        context.log.info(note)
    if requests:
        return SensorResult(run_requests=requests, cursor=str(cursor))
    return SensorResult(skip_reason=SkipReason("; ".join(notes) or "no new pairs"), cursor=str(cursor))
