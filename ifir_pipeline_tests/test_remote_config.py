"""Remote execution configuration, validated where no AWS exists."""

from importlib import resources

import yaml
from botocore.session import get_session
from botocore.validate import ParamValidator

from ifir_pipeline.remote import EcsTrainingTarget, pipes_ecs_client, run_task_params


def test_ecs_dagster_yaml_matches_dagster_aws_schemas():
    from dagster._config import process_config
    from dagster._core.instance.config import dagster_instance_config_schema
    from dagster_aws.ecs import EcsRunLauncher

    cfg = yaml.safe_load((resources.files("ifir_pipeline") / "deploy" / "ecs_dagster.yaml").read_text())
    assert process_config(dagster_instance_config_schema(), cfg).success
    launcher = process_config(EcsRunLauncher.config_type(), cfg["run_launcher"]["config"])
    assert launcher.success, launcher.errors
    assert cfg["run_launcher"]["class"] == "EcsRunLauncher"


def test_run_task_params_are_valid_for_the_ecs_api():
    target = EcsTrainingTarget(
        cluster="gpu",
        task_definition="ifir-train:3",
        subnets=["subnet-1"],
        security_groups=["sg-1"],
        capacity_provider="g5",
    )
    params = run_task_params(target)
    model = get_session().get_service_model("ecs").operation_model("RunTask")
    report = ParamValidator().validate(params, model.input_shape)
    assert not report.has_errors(), report.generate_report()
    assert params["overrides"]["containerOverrides"][0]["command"][-1] == "ifir_pipeline.train_entry"


def test_pipes_ecs_client_builds_without_aws():
    client = pipes_ecs_client(bucket="ifir-artifacts")
    assert type(client).__name__ == "PipesECSClient"


def test_task_definition_and_iam_policies_are_valid():
    import json

    folder = resources.files("ifir_pipeline") / "deploy"
    task = json.loads((folder / "ecs_task_definition.json").read_text())
    model = get_session().get_service_model("ecs").operation_model("RegisterTaskDefinition")
    report = ParamValidator().validate(task, model.input_shape)
    assert not report.has_errors(), report.generate_report()
    container = task["containerDefinitions"][0]
    assert container["resourceRequirements"] == [{"type": "GPU", "value": "1"}]
    assert container["logConfiguration"]["logDriver"] == "awslogs"
    assert (
        container["command"]
        == run_task_params(EcsTrainingTarget("c", "t"))["overrides"]["containerOverrides"][0]["command"]
    )
    for name in ("iam_task_policy.json", "iam_orchestrator_policy.json"):
        policy = json.loads((folder / name).read_text())
        assert policy["Version"] == "2012-10-17" and all(s["Effect"] == "Allow" for s in policy["Statement"])
    task_actions = {
        a
        for s in json.loads((folder / "iam_task_policy.json").read_text())["Statement"]
        for a in [s["Action"]]
        for a in ([a] if isinstance(a, str) else a)
    }
    assert task_actions == {"s3:GetObject", "s3:PutObject"}  # the training task touches S3 only


def test_dockerfile_installs_the_cuda_torch_first_runs_as_non_root_and_bakes_no_secret():
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "Dockerfile").read_text()
    assert text.index("torch==${TORCH_VERSION}") < text.index("pip install .")
    assert "USER ifir" in text and "ANTHROPIC_API_KEY" not in text and "AWS_SECRET" not in text
    assert 'CMD ["python", "-m", "ifir_pipeline.train_entry"]' in text and "ENTRYPOINT" not in text.split("CMD")[-1]


def test_the_gpu_entry_point_script_runs_its_cpu_dry_run():
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "bench" / "gpu_entry_point.py"
    done = subprocess.run([sys.executable, str(script), "--cpu-dry-run"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    last = json.loads(done.stdout.strip().splitlines()[-1])
    assert last["device"] == "cpu" and last["precision"] == "fp32" and last["entry_point_examples_per_s"] > 0
