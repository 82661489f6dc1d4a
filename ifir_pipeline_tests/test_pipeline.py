"""The whole chain in process on a tiny partition, the quality gate, and the retraining sensor."""

from pathlib import Path

import polars as pl
import pytest
from dagster import AssetKey, DagsterInstance, build_sensor_context, materialize

from ifir_pipeline.definitions import ASSETS, build_definitions, build_resources
from ifir_pipeline.defs.quality_checked_pairs.checks import quality_checks
from ifir_pipeline.defs.quality_checked_pairs.sensors import retrain_on_new_pairs
from ifir_pipeline.io_manager import artifact_dir, read_artifact, write_artifact
from ifir_pipeline.partitions import budget_recipe_key
from ifir_pipeline.resources import DataSources, EvaluationSettings, QualitySettings, TrainingSettings


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_train_beir, tiny_followir, tiny_beir_eval):
    root = tmp_path_factory.mktemp("pipeline")
    sources = DataSources(
        train=[{"name": "tiny", "format": "beir", "path": str(tiny_train_beir)}],
        evaluation=[
            {"name": "tiny-if", "format": "followir", "path": str(tiny_followir)},
            {"name": "tiny-beir", "format": "beir", "path": str(tiny_beir_eval)},
        ],
    )
    resources = build_resources(
        str(root),
        sources=sources,
        training=TrainingSettings(seeds=[1], batch_size=8, max_seq_length=48),
        evaluation=EvaluationSettings(general=True),
        quality=QualitySettings(min_accepted_share=0.3),
    )
    return resources, DagsterInstance.ephemeral(), root


def _run(resources, instance, selection, partition=None, checks=False):
    return materialize(
        [*ASSETS, *quality_checks] if checks else ASSETS,
        selection=selection,
        partition_key=partition,
        resources=resources,
        instance=instance,
        raise_on_error=False,
    )


def test_whole_chain_materializes_on_a_tiny_partition(setup):
    resources, instance, root = setup
    assert _run(resources, instance, ["source_corpora", "mined_negatives"]).success
    res = _run(resources, instance, ["inverted_instructions", "quality_checked_pairs"], "8", checks=True)
    assert res.success
    evals = {e.check_name: e.passed for e in res.get_asset_check_evaluations()}
    assert evals["pairs_expectations"] and evals["no_evaluation_leakage"] and evals["accepted_share"]
    for recipe in ("base", "dual_view"):
        assert _run(
            resources, instance, ["trained_checkpoint", "followir_scores"], budget_recipe_key(8, recipe)
        ).success
    assert _run(resources, instance, ["budget_report"]).success

    pairs = read_artifact(artifact_dir(resources["store"].asset_root(), "quality_checked_pairs", "8"))
    assert pairs["accepted"].height == 8 and pairs["gate"]["passed"]
    ck = read_artifact(artifact_dir(resources["store"].asset_root(), "trained_checkpoint", "8|dual_view"))
    assert Path(ck["checkpoints"][0]["path"], "ifir_lineage.json").exists()
    scores = read_artifact(artifact_dir(resources["store"].asset_root(), "followir_scores", "8|dual_view"))
    assert set(scores["summary"]["task"]) == {"tiny-if", "tiny-beir"}
    report = read_artifact(artifact_dir(resources["store"].asset_root(), "budget_report", None))
    assert set(report["recipe"]) == {"base", "dual_view"}
    assert report.filter(pl.col("recipe") == "dual_view")["delta_vs_base"].null_count() == 0
    assert (root / "reports" / "budget_report.png").read_bytes()[:4] == b"\x89PNG"
    assert list((root / "mteb_results" / "8" / "dual_view" / "seed-1").glob("*.json"))
    mat = instance.get_latest_materialization_event(AssetKey("trained_checkpoint"))
    assert "checkpoint_path" in mat.asset_materialization.metadata


def _poison(clean: pl.DataFrame, eval_query: str) -> pl.DataFrame:
    """From accepted pairs: labels not swapped (I' = I), empty instructions, a leaked evaluation query, and
    duplicates of a clean pair."""
    f = clean.head(8)
    cols = {
        c: f[c].to_list() for c in ("query", "instruction_og", "instruction_reversed", "positive_id", "negative_id")
    }
    cols["instruction_reversed"][0], cols["instruction_reversed"][1] = (
        cols["instruction_og"][0],
        cols["instruction_og"][1],
    )
    cols["instruction_reversed"][2], cols["instruction_og"][3] = "", ""
    cols["query"][4] = eval_query
    for values in cols.values():  # rows 6 and 7 repeat row 5: the same pair twice more
        values[6] = values[7] = values[5]
    return f.with_columns(*(pl.Series(c, v) for c, v in cols.items()))


def test_poisoned_partition_fails_the_gate_and_training_does_not_run(setup, tiny_followir):
    resources, instance, _ = setup
    from ifir_pipeline.loaders import load_followir_local

    eval_query = load_followir_local(tiny_followir).queries["text"][0]
    synth = read_artifact(artifact_dir(resources["store"].asset_root(), "inverted_instructions", "8"))
    accepted = read_artifact(artifact_dir(resources["store"].asset_root(), "quality_checked_pairs", "8"))["accepted"]
    poisoned = _poison(synth.filter(pl.col("pair_id").is_in(accepted["pair_id"].implode())), eval_query)
    write_artifact(artifact_dir(resources["store"].asset_root(), "inverted_instructions", "16"), poisoned)
    res = _run(resources, instance, ["quality_checked_pairs"], "16", checks=True)
    assert not res.success  # a blocking check with ERROR severity fails the run
    evals = {e.check_name: e.passed for e in res.get_asset_check_evaluations()}
    print("poisoned partition checks:", evals)
    assert not evals["accepted_share"] and not evals["budget_filled"]
    stored = read_artifact(artifact_dir(resources["store"].asset_root(), "quality_checked_pairs", "16"))
    reasons = set(stored["rejected"]["rejection_reason"])
    print("rejection reasons:", sorted(reasons))
    assert {"identical_instructions", "empty_instruction", "eval_leakage", "duplicate"} <= reasons
    assert not stored["gate"]["passed"]

    def n_trained() -> int:
        return len(instance.fetch_materializations(AssetKey("trained_checkpoint"), limit=1000).records)

    before = n_trained()
    res = _run(resources, instance, ["trained_checkpoint"], budget_recipe_key(16, "dual_view"))
    assert not res.success
    failure = next(e for e in res.all_events if e.is_step_failure)
    assert "quality gate failed for budget 16" in str(failure.event_specific_data.error)
    assert n_trained() == before  # nothing new was materialized


def _tick(defs, instance, cursor):
    result = retrain_on_new_pairs(build_sensor_context(instance=instance, definitions=defs, cursor=cursor))
    return result.run_requests or [], (result.skip_reason.skip_message if result.skip_reason else ""), result.cursor


def test_sensor_waits_for_the_gate_and_starts_from_now(setup):
    from dagster import AssetMaterialization, DagsterEvent, DagsterEventType, DagsterRun, DagsterRunStatus
    from dagster._core.events import StepMaterializationData
    from dagster._core.utils import make_new_run_id

    resources, instance, root = setup
    defs = build_definitions(str(root), **{k: v for k, v in resources.items() if k != "io_manager"})
    # first tick on an instance with history (budget 8 passed its gate, budget 16 failed it): nothing replayed
    requests, why, cursor = _tick(defs, instance, None)
    assert requests == [] and "starting from now" in why and int(cursor) > 0
    assert _tick(defs, instance, cursor)[0] == []
    # checks passed: a fresh materialization of budget 8 requests its four trained recipes, once
    assert _run(resources, instance, ["quality_checked_pairs"], "8", checks=True).success
    requests, _, cursor = _tick(defs, instance, cursor)
    assert sorted(str(r.partition_key) for r in requests) == [
        "8|diverse",
        "8|dual_view",
        "8|instruction_only",
        "8|no_instruction",
    ]
    assert len({r.run_key for r in requests}) == 4 and _tick(defs, instance, cursor)[0] == []
    # checks failed: the poisoned budget 16 again
    assert not _run(resources, instance, ["quality_checked_pairs"], "16", checks=True).success
    requests, why, cursor = _tick(defs, instance, cursor)
    assert requests == [] and "budget 16: blocking checks failed: accepted_share" in why
    # checks pending: pairs written by a run that is still going, its checks not evaluated yet
    run = DagsterRun(job_name="synthesize_pairs", run_id=make_new_run_id(), status=DagsterRunStatus.STARTED)
    instance.add_run(run)
    event = DagsterEvent(
        event_type_value=DagsterEventType.ASSET_MATERIALIZATION.value,
        job_name=run.job_name,
        event_specific_data=StepMaterializationData(AssetMaterialization("quality_checked_pairs", partition="8")),
    )
    instance.report_dagster_event(event, run_id=run.run_id)
    requests, why, waiting = _tick(defs, instance, cursor)
    assert requests == [] and "waiting for" in why and waiting == cursor  # the cursor stays before it
    # the run ends without evaluating them: not gated, so not retrained
    instance.report_run_failed(run)
    requests, why, after = _tick(defs, instance, waiting)
    assert requests == [] and "ended without evaluating" in why and int(after) > int(waiting)


def test_mining_is_configurable_from_run_config_and_shows_its_scores(tmp_path, tiny_train_beir, tiny_followir):
    resources = build_resources(
        str(tmp_path),
        sources=DataSources(
            train=[{"name": "tiny", "format": "beir", "path": str(tiny_train_beir)}],
            evaluation=[{"name": "tiny-if", "format": "followir", "path": str(tiny_followir)}],
        ),
    )
    instance = DagsterInstance.ephemeral()
    res = materialize(
        ASSETS,
        selection=["source_corpora", "mined_negatives"],
        resources=resources,
        instance=instance,
        run_config={"ops": {"mined_negatives": {"config": {"k": 1, "use_bm25": False, "rank_max": 20}}}},
    )
    assert res.success
    negatives = read_artifact(artifact_dir(resources["store"].asset_root(), "mined_negatives", None))
    assert negatives.group_by("example_id").len()["len"].max() == 1
    mined = negatives.filter(pl.col("negative_source") == "mined")
    assert mined.height and mined["bm25_rank"].null_count() == mined.height  # BM25 was switched off
    meta = instance.get_latest_materialization_event(AssetKey("mined_negatives")).asset_materialization.metadata
    assert meta["config"].data["k"] == 1 and "known_positive" in meta["guards"].data
    assert meta["score_distribution"].value.startswith("![score distribution](data:image/png;base64,")
    bad = materialize(
        ASSETS,
        selection=["mined_negatives"],
        resources=resources,
        instance=instance,
        run_config={"ops": {"mined_negatives": {"config": {"rank_min": 9, "rank_max": 3}}}},
        raise_on_error=False,
    )
    assert not bad.success
    assert "rank_min (9) is above rank_max (3)" in str(bad.get_step_failure_events()[0].event_specific_data.error)
