"""Remote GPU training through Dagster Pipes on AWS ECS (dagster-aws' PipesECSClient).

The training container runs ``python -m ifir_pipeline.train_entry`` (the same entry point as the local
subprocess path); Pipes passes the rows, config and lineage in, and streams logs and the checkpoint's
lineage back. Messages travel through S3 (PipesS3MessageReader) since the task has no channel to the
orchestrator otherwise; rows and checkpoints live on S3 too (ArtifactStore with ``s3_bucket``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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


def pipes_ecs_client(bucket: str, region_name: str = "us-east-1", endpoint_url: str | None = None):
    """A PipesECSClient whose messages come back through S3."""
    import boto3
    from dagster_aws.pipes import PipesECSClient, PipesS3MessageReader

    s3 = boto3.client("s3", region_name=region_name, endpoint_url=endpoint_url)
    return PipesECSClient(
        client=boto3.client("ecs", region_name=region_name, endpoint_url=endpoint_url),
        message_reader=PipesS3MessageReader(client=s3, bucket=bucket),
    )
