import sys
from dataclasses import asdict

from dagster import (
    AssetExecutionContext,
    AssetIn,
    DataVersion,
    Failure,
    MetadataValue,
    MultiToSingleDimensionPartitionMapping,
    Output,
    PipesSubprocessClient,
    asset,
)

from ifir_pipeline.defs._metadata import stats_metadata
from ifir_pipeline.encoders import resolve_model_path
from ifir_pipeline.hashing import frame_hash
from ifir_pipeline.partitions import budget_recipe_partitions
from ifir_pipeline.remote import EcsTraining, train_on_ecs
from ifir_pipeline.resources import ArtifactStore, EncoderResource, TrainingSettings
from ifir_pipeline.storage import atomic_write_parquet
from ifir_pipeline.training import TrainConfig, check_batch_size, recipe_rows, train_recipe
from ifir_pipeline.versions import TRAINING_CODE, checkpoint_version


def _config(training: TrainingSettings, encoder: EncoderResource) -> TrainConfig:
    return TrainConfig(
        base_model=encoder.model,
        batch_size=training.batch_size,
        learning_rate=training.learning_rate,
        epochs=training.epochs,
        max_seq_length=training.max_seq_length,
        precision=training.precision,
        cached_loss_mini_batch=training.cached_loss_mini_batch,
    )


@asset(
    group_name="training",
    partitions_def=budget_recipe_partitions,
    ins={
        "quality_checked_pairs": AssetIn(
            partition_mapping=MultiToSingleDimensionPartitionMapping(partition_dimension_name="budget")
        )
    },
    code_version=TRAINING_CODE,
    op_tags={"ifir/gpu": "0"},
    description="A sentence-transformers checkpoint per seed for one (budget, recipe); `base` is the untrained "
    "encoder. Refuses to train on a budget whose quality gate failed.",
    kinds={"torch", "pytorch"},
)
def trained_checkpoint(
    context: AssetExecutionContext,
    quality_checked_pairs: dict,
    training: TrainingSettings,
    encoder: EncoderResource,
    store: ArtifactStore,
    pipes_subprocess_client: PipesSubprocessClient,
    ecs_training: EcsTraining,
):
    keys = context.partition_key.keys_by_dimension
    budget, recipe = int(keys["budget"]), keys["recipe"]
    if recipe == "base":
        path = resolve_model_path(encoder.model)
        return Output(
            {
                "budget": budget,
                "recipe": recipe,
                "checkpoints": [{"seed": None, "path": path}],
                "base_model": encoder.model,
                "code_version": TRAINING_CODE,
            },
            data_version=DataVersion(checkpoint_version([path])),
            metadata={"checkpoint_path": MetadataValue.path(path), "recipe": recipe, "trained": False},
        )
    gate = quality_checked_pairs["gate"]
    if not gate["passed"]:
        raise Failure(
            description=f"quality gate failed for budget {budget}: not training",
            metadata={"gate": MetadataValue.json({k: v for k, v in gate.items() if not k.startswith("gx")})},
        )
    accepted = quality_checked_pairs["accepted"]
    cfg = _config(training, encoder)
    lineage = {
        "recipe": recipe,
        "budget": budget,
        "upstream_partition": str(budget),
        "pairs_hash": frame_hash(accepted),
        "dagster_run_id": context.run_id,
    }
    checkpoints = []
    for seed in training.seeds:
        try:
            check_batch_size(recipe, training.batch_size)
            rows = recipe_rows(accepted, recipe, budget, seed)
        except ValueError as exc:
            raise Failure(description=str(exc)) from exc
        out = store.path("checkpoints", str(budget), recipe, f"seed-{seed}")
        context.log.info(f"training {recipe} at budget {budget}, seed {seed}: {rows.height} examples -> {out}")
        if training.execution == "pipes_subprocess":
            rows_path = atomic_write_parquet(
                store.path("checkpoints", str(budget), recipe, f"seed-{seed}.rows.parquet"), rows
            )
            invocation = pipes_subprocess_client.run(
                command=[sys.executable, "-m", "ifir_pipeline.train_entry"],
                context=context,
                extras={
                    "rows_path": str(rows_path),
                    "output_dir": str(out),
                    "config": asdict(cfg),
                    "seed": seed,
                    "lineage": lineage,
                },
            )
            info = invocation.get_custom_messages()[-1]
        elif training.execution == "pipes_ecs":
            # inputs up to S3, a GPU task on ECS, the checkpoint back from S3 (a local copy for scoring)
            info = train_on_ecs(context, ecs_training, store, rows, cfg, seed, lineage, budget, recipe)
        elif training.execution == "in_process":
            info = train_recipe(rows, out, cfg, seed, lineage, log=context.log.info)
        else:
            raise Failure(
                description=f"unknown TrainingSettings.execution {training.execution!r}; "
                "use in_process, pipes_subprocess or pipes_ecs"
            )
        uri = info.get("checkpoint_uri") or store.publish(out)
        checkpoints.append(
            {
                "uri": uri,
                "seed": seed,
                "path": str(out),
                **{
                    k: info[k]
                    for k in ("final_loss", "train_seconds", "examples_per_second", "steps", "device", "precision")
                },
            }
        )
    metadata = {
        "checkpoint_path": MetadataValue.path(checkpoints[0]["path"]),
        "checkpoint_link": MetadataValue.url(f"file://{checkpoints[0]['path']}"),
        **({"checkpoint_uri": checkpoints[0]["uri"]} if checkpoints[0]["uri"] else {}),
        "checkpoint_paths": MetadataValue.json([c["path"] for c in checkpoints]),
        "recipe": recipe,
        "budget": budget,
        "seeds": MetadataValue.json(training.seeds),
        **stats_metadata(
            {
                "final_loss_mean": sum(c["final_loss"] for c in checkpoints) / len(checkpoints),
                "train_seconds_total": round(sum(c["train_seconds"] for c in checkpoints), 2),
                "examples_per_second": checkpoints[0]["examples_per_second"],
                "device": checkpoints[0]["device"],
                "precision": checkpoints[0]["precision"],
                "pairs_hash": lineage["pairs_hash"],
            }
        ),
    }
    value = {
        "budget": budget,
        "recipe": recipe,
        "checkpoints": checkpoints,
        "base_model": encoder.model,
        "lineage": lineage,
        "code_version": TRAINING_CODE,
    }
    # an Output, not a bare value: a Pipes session puts the step in typed-event-stream mode
    version = checkpoint_version([c["path"] for c in checkpoints])
    return Output(value, metadata=metadata, data_version=DataVersion(version))
