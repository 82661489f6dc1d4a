"""Storage on S3 through dagster-aws, tested against moto's S3 server on 127.0.0.1 (started here)."""

import shutil
from pathlib import Path

import polars as pl
from dagster import DagsterInstance, materialize

from ifir_pipeline.definitions import ASSETS, build_resources
from ifir_pipeline.io_manager import ArtifactIOManager, artifact_dir, read_artifact
from ifir_pipeline.loaders import load_beir
from ifir_pipeline.partitions import budget_recipe_key
from ifir_pipeline.resources import ArtifactStore, DataSources, EvaluationSettings, QualitySettings, TrainingSettings
from ifir_pipeline.s3_storage import current_version, s3_client, upload_folder
from ifir_pipeline_tests.conftest import BUCKET


def test_whole_chain_on_s3_and_rebuilt_from_s3_alone(moto_endpoint, tmp_path, tiny_train_beir, tiny_followir):
    root = tmp_path / "root"
    store = ArtifactStore(root=str(root), s3_bucket=BUCKET, s3_endpoint_url=moto_endpoint)
    resources = build_resources(
        str(root),
        store=store,
        io_manager=ArtifactIOManager(root=store.asset_root(), s3_bucket=BUCKET, s3_endpoint_url=moto_endpoint),
        sources=DataSources(
            train=[{"name": "tiny", "format": "beir", "path": str(tiny_train_beir)}],
            evaluation=[{"name": "tiny-if", "format": "followir", "path": str(tiny_followir)}],
        ),
        training=TrainingSettings(seeds=[1], batch_size=8, max_seq_length=48),
        evaluation=EvaluationSettings(general=False),
        quality=QualitySettings(min_accepted_share=0.3),
    )
    instance = DagsterInstance.ephemeral()

    def run(selection, partition=None):
        res = materialize(
            ASSETS,
            selection=selection,
            partition_key=partition,
            resources=resources,
            instance=instance,
            raise_on_error=False,
        )
        assert res.success, [e.message for e in res.all_events if e.is_failure]
        return res

    run(["source_corpora", "mined_negatives"])
    run(["inverted_instructions", "quality_checked_pairs"], "8")
    res = run(["trained_checkpoint", "followir_scores"], budget_recipe_key(8, "dual_view"))
    client = s3_client(moto_endpoint)
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix="ifir/")["Contents"]]
    for asset in (
        "source_corpora/_all",
        "mined_negatives/_all",
        "quality_checked_pairs/8",
        "trained_checkpoint/8/dual_view",
        "followir_scores/8/dual_view",
    ):
        assert current_version(client, BUCKET, f"ifir/assets/{asset}") is not None, asset
    assert any(k.startswith("ifir/checkpoints/8/dual_view/seed-1/") and k.endswith("model.safetensors") for k in keys)
    mat = res.asset_materializations_for_node("trained_checkpoint")[0]
    assert mat.metadata["checkpoint_uri"].value.startswith(f"s3://{BUCKET}/ifir/checkpoints/8/dual_view/seed-1/")
    print(f"moto-backed run stored {len(keys)} objects; checkpoint at {mat.metadata['checkpoint_uri'].value}")

    # A fresh machine: no local artifacts at all. Downstream assets read their inputs from S3.
    shutil.rmtree(root / "assets")
    run(["followir_scores"], budget_recipe_key(8, "dual_view"))  # loads trained_checkpoint from S3
    shutil.rmtree(root / "assets")
    run(["budget_report"])  # fetches every followir_scores partition from S3
    report = read_artifact(artifact_dir(store.asset_root(), "budget_report", None))
    assert set(report["recipe"]) == {"dual_view"}


def test_a_transient_s3_error_is_retried(moto_endpoint, tmp_path):
    client = s3_client(moto_endpoint, max_attempts=4)
    failures = {"left": 1}

    def flaky(request, **kwargs):
        if failures["left"] and request.method == "PUT":
            failures["left"] -= 1
            from botocore.awsrequest import AWSResponse

            class Raw:
                def stream(self, **kw):
                    yield b"<Error><Code>InternalError</Code><Message>injected</Message></Error>"

            return AWSResponse(request.url, 500, {}, Raw())
        return None

    client.meta.events.register("before-send.s3.*", flaky)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.txt").write_text("hello")
    version = upload_folder(client, tmp_path / "a", BUCKET, "retry-test")
    assert failures["left"] == 0  # the injected 500 happened
    assert client.get_object(Bucket=BUCKET, Key=f"retry-test/{version}/x.txt")["Body"].read() == b"hello"


def test_loaders_read_s3_uris(moto_endpoint, tiny_beir_eval):
    client = s3_client(moto_endpoint)
    for p in Path(tiny_beir_eval).rglob("*"):
        if p.is_file():
            client.upload_file(str(p), BUCKET, f"data/beir/{p.relative_to(tiny_beir_eval).as_posix()}")
    remote = load_beir(f"s3://{BUCKET}/data/beir")
    local = load_beir(tiny_beir_eval)
    assert remote.qrels.equals(local.qrels) and remote.corpus.height == local.corpus.height
    assert isinstance(remote.corpus, pl.DataFrame)
