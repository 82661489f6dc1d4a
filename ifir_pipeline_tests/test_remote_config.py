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
