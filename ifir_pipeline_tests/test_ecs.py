"""GPU training on AWS ECS through Dagster Pipes, tested without AWS.

S3 is moto's server. ECS's scheduler is the one part played here: ``LocalEcs`` answers the ECS API calls
PipesECSClient makes (its ``run_task`` parameters are validated against botocore's ECS model) and starts the
task's container command, ``python -m ifir_pipeline.train_entry``, as a real local process with the task's
environment overrides (the Pipes bootstrap). Everything else is the production path: inputs uploaded to S3,
the entry point reading them, training, the checkpoint written to S3 with its pointer last, messages and logs
coming back through S3, the checkpoint registered in Dagster. A botocore Stubber plays failures.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import botocore.session
import pytest
from botocore.stub import Stubber
from botocore.validate import ParamValidator
from dagster import AssetKey, DagsterInstance, materialize

from ifir_pipeline.definitions import ASSETS, build_resources
from ifir_pipeline.io_manager import ArtifactIOManager, artifact_dir, read_artifact
from ifir_pipeline.partitions import budget_recipe_key
from ifir_pipeline.remote import EcsTraining
from ifir_pipeline.resources import ArtifactStore, DataSources, EvaluationSettings, QualitySettings, TrainingSettings
from ifir_pipeline.s3_storage import current_version, s3_client
from ifir_pipeline_tests.conftest import BUCKET

TASK_DEF = {
    "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/ifir-train:1",
    "family": "ifir-train",
    "containerDefinitions": [{"name": "ifir-train", "image": "ifir-train:latest", "essential": True}],
}
CLUSTER_ARN = "arn:aws:ecs:us-east-1:123456789012:cluster/gpu"


class _Waiter:
    def __init__(self, ecs):
        self.ecs = ecs

    def wait(self, tasks, cluster=None, WaiterConfig=None):  # noqa: N803 - boto3's name
        delay = (WaiterConfig or {}).get("Delay", 1)
        while self.ecs.describe_tasks(tasks=tasks, cluster=cluster)["tasks"][0]["lastStatus"] != "STOPPED":
            time.sleep(min(delay, 1))


class LocalEcs:
    """The ECS API calls PipesECSClient makes, with the task's container run as a local process."""

    def __init__(self):
        self.model = botocore.session.get_session().get_service_model("ecs")
        self.proc = None
        self.calls = []
        self.meta = type("Meta", (), {"region_name": "us-east-1"})()

    def _validate(self, op, params):
        report = ParamValidator().validate(params, self.model.operation_model(op).input_shape)
        assert not report.has_errors(), report.generate_report()
        self.calls.append(op)

    def describe_task_definition(self, **params):
        self._validate("DescribeTaskDefinition", params)
        return {"taskDefinition": TASK_DEF}

    def run_task(self, **params):
        self._validate("RunTask", params)
        override = params["overrides"]["containerOverrides"][0]
        env = {**os.environ, **{e["name"]: e["value"] for e in override["environment"]}}
        self.command, self.resources, self.tags = override["command"], override["resourceRequirements"], params["tags"]
        self.log = open(Path(os.environ["IFIR_HOME"]) / "ecs-task.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, *override["command"][1:]], env=env, stdout=self.log, stderr=subprocess.STDOUT
        )
        self.polls = 0
        return {"tasks": [self._task("PROVISIONING")], "failures": []}

    def _task(self, status, exit_code=None):
        container = {"name": "ifir-train", "runtimeId": "rt-1", "lastStatus": status}
        if exit_code is not None:
            container["exitCode"] = exit_code
        return {
            "taskArn": "arn:aws:ecs:us-east-1:123456789012:task/gpu/0a1b2c3d",
            "clusterArn": CLUSTER_ARN,
            "lastStatus": status,
            "containers": [container],
            **({"stoppedReason": "Essential container in task exited"} if status == "STOPPED" else {}),
        }

    def describe_tasks(self, **params):
        self._validate("DescribeTasks", params)
        self.polls += 1
        code = self.proc.poll()
        if code is None:
            return {"tasks": [self._task("PROVISIONING" if self.polls == 1 else "RUNNING")]}
        self.log.flush()
        return {"tasks": [self._task("STOPPED", code)]}

    def get_waiter(self, name):
        assert name == "tasks_stopped"
        return _Waiter(self)

    def stop_task(self, **params):
        self._validate("StopTask", params)
        self.proc.kill()


class LocalEcsTraining(EcsTraining):
    def ecs_client(self):
        return _ECS[0]


_ECS: list = []


def _resources(root, moto_endpoint, tiny_train_beir, tiny_followir, ecs_training):
    store = ArtifactStore(root=str(root), s3_bucket=BUCKET, s3_endpoint_url=moto_endpoint)
    return build_resources(
        str(root),
        store=store,
        io_manager=ArtifactIOManager(root=store.asset_root(), s3_bucket=BUCKET, s3_endpoint_url=moto_endpoint),
        sources=DataSources(
            train=[{"name": "tiny", "format": "beir", "path": str(tiny_train_beir)}],
            evaluation=[{"name": "tiny-if", "format": "followir", "path": str(tiny_followir)}],
        ),
        training=TrainingSettings(seeds=[5], batch_size=8, max_seq_length=32, execution="pipes_ecs"),
        evaluation=EvaluationSettings(general=False),
        quality=QualitySettings(min_accepted_share=0.3),
        ecs_training=ecs_training,
    )


@pytest.fixture(scope="module")
def pairs_ready(moto_endpoint, tmp_path_factory, tiny_train_beir, tiny_followir):
    root = tmp_path_factory.mktemp("ecs")
    os.environ["IFIR_HOME"] = str(root)
    resources = _resources(root, moto_endpoint, tiny_train_beir, tiny_followir, EcsTraining())
    instance = DagsterInstance.ephemeral()
    for selection, partition in (
        (["source_corpora", "mined_negatives"], None),
        (["inverted_instructions", "quality_checked_pairs"], "8"),
    ):
        assert materialize(
            ASSETS, selection=selection, partition_key=partition, resources=resources, instance=instance
        ).success
    return root, instance


def test_training_runs_as_an_ecs_task_end_to_end(pairs_ready, moto_endpoint, tiny_train_beir, tiny_followir):
    root, instance = pairs_ready
    _ECS[:] = [LocalEcs()]
    target = LocalEcsTraining(
        cluster="gpu", task_definition="ifir-train:1", gpus=1, capacity_provider="g5", poll_seconds=1
    )
    resources = _resources(root, moto_endpoint, tiny_train_beir, tiny_followir, target)
    res = materialize(
        ASSETS,
        selection=["trained_checkpoint", "followir_scores"],
        partition_key=budget_recipe_key(8, "dual_view"),
        resources=resources,
        instance=instance,
        raise_on_error=False,
    )
    assert res.success, [e.message for e in res.all_events if e.is_failure]
    ecs = _ECS[0]
    assert ecs.calls[:2] == ["DescribeTaskDefinition", "RunTask"] and ecs.calls.count("DescribeTasks") >= 2
    assert ecs.command == ["python", "-m", "ifir_pipeline.train_entry"] and ecs.resources == [
        {"type": "GPU", "value": "1"}
    ]
    messages = [e.user_message or "" for e in instance.all_logs(res.run_id)]
    launched = next(m for m in messages if "ECS: training 8/dual_view/seed-5" in m)
    streamed = sorted({m for m in messages if m.startswith(("checkpoint written to s3://", "inputs s3://"))})
    logs = [m for m in messages if m.startswith("step ") and " loss " in m]  # the trainer's lines, from the task
    registered = res.asset_materializations_for_node("trained_checkpoint")[0].metadata["checkpoint_uri"].value
    print("event log excerpt:\n  " + "\n  ".join([launched, *streamed, f"checkpoint_uri: {registered}"]))
    assert len(streamed) == 2 and logs  # the task's own log lines came back through Pipes
    client = s3_client(moto_endpoint)
    key = "ifir/checkpoints/8/dual_view/seed-5"
    version = current_version(client, BUCKET, key)
    assert registered == f"s3://{BUCKET}/{key}/{version}"
    assert client.head_object(Bucket=BUCKET, Key=f"{key}/{version}/model.safetensors")["ContentLength"] > 1_000_000
    assert current_version(client, BUCKET, "ifir/training-inputs/8/dual_view/seed-5")
    ck = read_artifact(artifact_dir(str(root / "assets"), "trained_checkpoint", "8|dual_view"))
    assert (
        ck["checkpoints"][0]["uri"] == registered and Path(ck["checkpoints"][0]["path"], "model.safetensors").exists()
    )
    assert ck["lineage"]["recipe"] == "dual_view"
    assert set(
        read_artifact(artifact_dir(str(root / "assets"), "followir_scores", "8|dual_view"))["summary"]["task"]
    ) == {"tiny-if"}


def _stubbed(responses):
    client = botocore.session.get_session().create_client(
        "ecs", region_name="us-east-1", endpoint_url="https://ecs.invalid"
    )
    stub = Stubber(client)
    for op, body in responses:
        stub.add_response(op, body)
    stub.activate()
    return client


def _task(status, exit_code=None, reason=None, stopped=None):
    c = {"name": "ifir-train", "runtimeId": "rt-9", "lastStatus": status}
    if exit_code is not None:
        c["exitCode"] = exit_code
    if reason:
        c["reason"] = reason
    t = {
        "taskArn": "arn:aws:ecs:us-east-1:123456789012:task/gpu/ffff",
        "clusterArn": CLUSTER_ARN,
        "lastStatus": status,
        "containers": [c],
    }
    if stopped:
        t["stoppedReason"] = stopped
    return t


OOM_KILLED = _task(
    "STOPPED", 137, "OutOfMemoryError: Container killed due to memory usage", "Essential container in task exited"
)


@pytest.mark.parametrize(
    ("responses", "expected"),
    [
        (
            [
                ("describe_task_definition", {"taskDefinition": TASK_DEF}),
                ("run_task", {"tasks": [_task("PROVISIONING")], "failures": []}),
                ("describe_tasks", {"tasks": [_task("RUNNING")]}),
                ("describe_tasks", {"tasks": [OOM_KILLED]}),  # the waiter sees it stopped
                ("describe_tasks", {"tasks": [OOM_KILLED]}),  # PipesECSClient's final description
            ],
            "Essential container in task exited; container ifir-train: exit code 137 OutOfMemoryError",
        ),
        (
            [
                ("describe_task_definition", {"taskDefinition": TASK_DEF}),
                (
                    "run_task",
                    {
                        "tasks": [],
                        "failures": [
                            {
                                "arn": "arn:aws:ecs:us-east-1:123456789012:container-instance/gpu/1",
                                "reason": "RESOURCE:GPU",
                            }
                        ],
                    },
                ),
            ],
            "ECS could not place the training task: RESOURCE:GPU",
        ),
    ],
    ids=["non-zero-exit", "placement-failure"],
)
def test_a_failed_ecs_task_fails_the_asset_with_ecs_reason(
    pairs_ready, moto_endpoint, tiny_train_beir, tiny_followir, responses, expected
):
    root, instance = pairs_ready
    client = _stubbed(responses)

    class Stubbed(EcsTraining):
        def ecs_client(self):
            return client

    resources = _resources(
        root,
        moto_endpoint,
        tiny_train_beir,
        tiny_followir,
        Stubbed(cluster="gpu", task_definition="ifir-train:1", poll_seconds=1),
    )
    before = len(instance.fetch_materializations(AssetKey("trained_checkpoint"), limit=100).records)
    res = materialize(
        ASSETS,
        selection=["trained_checkpoint"],
        partition_key=budget_recipe_key(8, "instruction_only"),
        resources=resources,
        instance=instance,
        raise_on_error=False,
    )
    assert not res.success
    failure = next(e for e in res.all_events if e.is_step_failure).event_specific_data.error.to_string()
    print(f"failure message: {failure.splitlines()[0][:300]}")
    assert expected in failure
    assert (
        len(instance.fetch_materializations(AssetKey("trained_checkpoint"), limit=100).records) == before
    )  # nothing registered
    assert current_version(s3_client(moto_endpoint), BUCKET, "ifir/checkpoints/8/instruction_only/seed-5") is None
