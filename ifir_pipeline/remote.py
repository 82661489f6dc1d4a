"""Remote GPU training through Dagster Pipes on AWS ECS (dagster-aws' PipesECSClient).

``TrainingSettings(execution="pipes_ecs")`` sends every training partition to a GPU task:

1. the asset uploads the recipe rows and the training config to the artifact store on S3 (a new version prefix,
   the ``CURRENT`` pointer last, like every artifact);
2. it starts the task with ``PipesECSClient`` (cluster, task definition, GPU count, capacity provider from
   :class:`EcsTraining`); Pipes passes the inputs' URIs as extras and brings the task's log lines and messages
   back through S3 (``PipesS3MessageReader``);
3. the container runs ``python -m ifir_pipeline.train_entry``: it reads its inputs from S3, trains (CUDA bf16
   when present; ``torchrun`` over the task's GPUs when it has several), writes the checkpoint to S3 atomically
   (version prefix, pointer last) and reports its URI, lineage and metrics;
4. the asset registers them (and fetches the checkpoint for scoring). A task that cannot be placed, or stops
   with a non-zero exit code, fails the asset with ECS's own stopped reason; nothing is registered.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource
from pydantic import Field


@dataclass(frozen=True)
class EcsTrainingTarget:
    cluster: str
    task_definition: str  # a GPU task definition whose container image has ifir-pipeline installed
    container_name: str = "ifir-train"
    subnets: list[str] = field(default_factory=list)
    security_groups: list[str] = field(default_factory=list)
    gpus: int = 1
    capacity_provider: str | None = None  # an EC2 GPU capacity provider; Fargate has no GPUs


def run_task_params(target: EcsTrainingTarget) -> dict[str, Any]:
    """``ecs.run_task`` parameters for one training task (Pipes adds the bootstrap environment)."""
    params: dict[str, Any] = {
        "cluster": target.cluster,
        "taskDefinition": target.task_definition,
        "count": 1,
        "overrides": {
            "containerOverrides": [
                {
                    "name": target.container_name,
                    "command": ["python", "-m", "ifir_pipeline.train_entry"],
                    "resourceRequirements": [{"type": "GPU", "value": str(target.gpus)}],
                }
            ]
        },
    }
    if target.capacity_provider:
        params["capacityProviderStrategy"] = [{"capacityProvider": target.capacity_provider, "weight": 1}]
    else:
        params["launchType"] = "EC2"
    if target.subnets:
        params["networkConfiguration"] = {
            "awsvpcConfiguration": {
                "subnets": target.subnets,
                "securityGroups": target.security_groups,
                "assignPublicIp": "DISABLED",
            }
        }
    return params


class EcsTaskError(RuntimeError):
    """An ECS training task that could not be placed or did not finish cleanly, in ECS's own words."""


class GuardedEcsClient:
    """A boto3 ECS client that turns placement failures into a clear error and remembers the last task
    description, so a failed task is reported with ECS's stopped reason (PipesECSClient only names runtime ids)."""

    def __init__(self, client) -> None:
        self._client = client
        self.last_tasks: list[dict[str, Any]] = []

    def __getattr__(self, name: str):
        return getattr(self._client, name)

    def run_task(self, **params):
        response = self._client.run_task(**params)
        if not response.get("tasks"):
            reasons = [
                f"{f.get('reason', '?')} ({f.get('arn', params.get('cluster'))})" for f in response.get("failures", [])
            ]
            raise EcsTaskError(f"ECS could not place the training task: {'; '.join(reasons) or 'no task started'}")
        self.last_tasks = response["tasks"]
        return response

    def describe_tasks(self, **params):
        response = self._client.describe_tasks(**params)
        if response.get("tasks"):
            self.last_tasks = response["tasks"]
        return response

    def stopped_reason(self) -> str | None:
        """``stoppedReason`` and each container's exit code and reason of the last described task."""
        if not self.last_tasks:
            return None
        task = self.last_tasks[0]
        parts = [task.get("stoppedReason") or task.get("stopCode") or task.get("lastStatus", "")]
        for c in task.get("containers", []):
            if c.get("exitCode") not in (None, 0) or c.get("reason"):
                parts.append(
                    f"container {c.get('name')}: exit code {c.get('exitCode')} {c.get('reason') or ''}".strip()
                )
        return "; ".join(p for p in parts if p)


class EcsTraining(ConfigurableResource):
    """Where ``execution="pipes_ecs"`` sends training: the ECS cluster, GPU task definition and placement."""

    cluster: str = ""
    task_definition: str = ""
    container_name: str = "ifir-train"
    subnets: list[str] = Field(default_factory=list)
    security_groups: list[str] = Field(default_factory=list)
    gpus: int = 1
    capacity_provider: str | None = None
    region_name: str = "us-east-1"
    endpoint_url: str | None = None  # the ECS API endpoint (LocalStack, tests); None: AWS
    poll_seconds: float = 15.0

    def target(self) -> EcsTrainingTarget:
        if not self.cluster or not self.task_definition:
            raise ValueError("execution 'pipes_ecs' needs EcsTraining.cluster and EcsTraining.task_definition")
        return EcsTrainingTarget(
            cluster=self.cluster,
            task_definition=self.task_definition,
            container_name=self.container_name,
            subnets=list(self.subnets),
            security_groups=list(self.security_groups),
            gpus=self.gpus,
            capacity_provider=self.capacity_provider,
        )

    def ecs_client(self):
        import boto3

        return boto3.client("ecs", region_name=self.region_name, endpoint_url=self.endpoint_url)


def pipes_ecs_client(bucket: str, region_name: str = "us-east-1", endpoint_url: str | None = None, ecs=None, s3=None):
    """A PipesECSClient whose messages come back through S3 (``ecs``/``s3``: clients to use instead of new ones)."""
    import boto3
    from dagster_aws.pipes import PipesECSClient, PipesS3MessageReader

    s3 = s3 or boto3.client("s3", region_name=region_name, endpoint_url=endpoint_url)
    return PipesECSClient(
        client=ecs or boto3.client("ecs", region_name=region_name, endpoint_url=endpoint_url),
        message_reader=PipesS3MessageReader(client=s3, bucket=bucket, interval=2),
    )


def train_on_ecs(
    context,
    ecs: EcsTraining,
    store,
    rows,
    config: Any,
    seed: int,
    lineage: dict[str, Any],
    budget: int,
    recipe: str,
) -> dict[str, Any]:
    """Upload the inputs, run the training task, register what it reports. Returns the run's info (with the
    checkpoint's S3 URI and a local copy's path)."""
    from dagster import Failure

    from ifir_pipeline.s3_storage import download_current, s3_client, upload_folder

    if not store.s3_bucket:
        raise Failure(description="execution 'pipes_ecs' needs an S3 artifact store: set IFIR_S3_BUCKET")
    s3 = s3_client(store.s3_endpoint_url, max_attempts=store.s3_max_attempts)
    prefix = store.s3_prefix.rstrip("/")
    where = f"{budget}/{recipe}/seed-{seed}"
    inputs_key = f"{prefix}/training-inputs/{where}"
    with tempfile.TemporaryDirectory(prefix="ifir-ecs-inputs-") as tmp:
        rows.write_parquet(Path(tmp) / "rows.parquet")
        (Path(tmp) / "config.json").write_text(
            json.dumps(asdict(config) if hasattr(config, "__dataclass_fields__") else config)
        )
        version = upload_folder(s3, Path(tmp), store.s3_bucket, inputs_key)
    output_key = f"{prefix}/checkpoints/{where}"
    extras = {
        "rows_uri": f"s3://{store.s3_bucket}/{inputs_key}/{version}/rows.parquet",
        "bucket": store.s3_bucket,
        "output_key": output_key,
        "config": asdict(config) if hasattr(config, "__dataclass_fields__") else config,
        "seed": seed,
        "lineage": lineage,
        "gpus": ecs.gpus,
        "s3_endpoint_url": store.s3_endpoint_url,
    }
    guard = GuardedEcsClient(ecs.ecs_client())
    client = pipes_ecs_client(store.s3_bucket, ecs.region_name, store.s3_endpoint_url, ecs=guard, s3=s3)
    params = run_task_params(ecs.target())
    context.log.info(
        f"ECS: training {where} on {ecs.cluster}/{ecs.task_definition} ({ecs.gpus} GPU), inputs {extras['rows_uri']}"
    )
    try:
        invocation = client.run(
            context=context,
            run_task_params=params,
            extras=extras,
            waiter_config={"Delay": max(1, int(ecs.poll_seconds)), "MaxAttempts": 1_000_000},
        )
    except EcsTaskError as exc:
        raise Failure(description=str(exc)) from exc
    except Exception as exc:  # noqa: BLE001 - PipesECSClient raises RuntimeError for failed tasks
        why = guard.stopped_reason()
        raise Failure(description=f"ECS training task for {where} failed: {why or exc}") from exc
    messages = invocation.get_custom_messages()
    if not messages or "checkpoint_uri" not in messages[-1]:
        raise Failure(description=f"ECS training task for {where} ended without reporting a checkpoint")
    info = dict(messages[-1])
    local = store.path("checkpoints", str(budget), recipe, f"seed-{seed}")
    if not download_current(s3, store.s3_bucket, output_key, local):
        raise Failure(description=f"checkpoint {info['checkpoint_uri']} is not on S3")
    info["path"] = str(local)
    return info
