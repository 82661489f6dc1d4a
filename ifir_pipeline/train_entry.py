"""Training as external compute through Dagster Pipes: ``python -m ifir_pipeline.train_entry``.

The same entry point runs in a local subprocess (``execution="pipes_subprocess"``: extras name local files)
and in the ECS training container (``execution="pipes_ecs"``: extras name S3 URIs). In the container it
downloads the rows, trains (CUDA with bf16 when present; with several GPUs it re-launches itself under
``torchrun --nproc_per_node <gpus>``, the trainer's own DDP path), uploads the checkpoint to S3 as a new
version whose ``CURRENT`` pointer is written last, and reports the checkpoint's URI, lineage and metrics.
Log lines go back through Pipes as they happen.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import polars as pl


def _s3(endpoint_url: str | None):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint_url or os.environ.get("AWS_ENDPOINT_URL"))


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def _train_local(rows_path: Path, out: Path, config: dict, seed: int, lineage: dict, gpus: int, log) -> dict:
    """Train in this process, or under torchrun over ``gpus`` GPUs (the first rank writes the checkpoint)."""
    import torch

    from ifir_pipeline.training import TrainConfig, train_recipe

    n = min(gpus, torch.cuda.device_count()) if torch.cuda.is_available() else 1
    if n <= 1 or os.environ.get("WORLD_SIZE"):
        return train_recipe(pl.read_parquet(rows_path), out, TrainConfig(**config), seed, lineage, log=log)
    spec = out.parent / "worker.json"
    spec.write_text(
        json.dumps({"rows": str(rows_path), "out": str(out), "config": config, "seed": seed, "lineage": lineage})
    )
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={n}",
        "-m",
        "ifir_pipeline.train_entry",
        "--worker",
        str(spec),
    ]
    log(f"training on {n} GPUs: {' '.join(cmd[2:])}")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:  # stream the workers' output back as it comes
        log(line.rstrip())
    if proc.wait() != 0:
        raise RuntimeError(f"torchrun exited with {proc.returncode}")
    return json.loads((out / "ifir_lineage.json").read_text())


def _worker(spec_path: str) -> None:
    from ifir_pipeline.training import TrainConfig, train_recipe

    spec = json.loads(Path(spec_path).read_text())
    train_recipe(
        pl.read_parquet(spec["rows"]),
        spec["out"],
        TrainConfig(**spec["config"]),
        spec["seed"],
        spec["lineage"],
        log=print,
    )


def _message_writer():
    """Messages go back the way the orchestrator reads them: through S3 for ECS (the bootstrap names a
    bucket), through the default channel (a file) for a local subprocess."""
    from dagster_pipes import PipesDefaultMessageWriter, PipesEnvVarParamsLoader, PipesS3MessageWriter

    params = PipesEnvVarParamsLoader().load_messages_params()
    if "bucket" in params:
        return PipesS3MessageWriter(client=_s3(None), interval=2)
    return PipesDefaultMessageWriter()


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        _worker(sys.argv[2])
        return
    from dagster_pipes import open_dagster_pipes

    with open_dagster_pipes(message_writer=_message_writer()) as pipes:
        extras = pipes.extras
        log = pipes.log.info
        if "rows_uri" not in extras:  # local subprocess: files on this machine
            from ifir_pipeline.training import TrainConfig, train_recipe

            rows = pl.read_parquet(extras["rows_path"])
            info = train_recipe(
                rows,
                extras["output_dir"],
                TrainConfig(**extras["config"]),
                int(extras["seed"]),
                extras["lineage"],
                log=log,
            )
            pipes.report_custom_message(info)
            return
        from ifir_pipeline.s3_storage import upload_folder

        s3 = _s3(extras.get("s3_endpoint_url"))
        with tempfile.TemporaryDirectory(prefix="ifir-train-") as tmp:
            rows_path = Path(tmp) / "rows.parquet"
            bucket, key = _split(extras["rows_uri"])
            s3.download_file(bucket, key, str(rows_path))
            log(f"inputs {extras['rows_uri']} downloaded; training seed {extras['seed']}")
            out = Path(tmp) / "checkpoint"
            info = _train_local(
                rows_path,
                out,
                extras["config"],
                int(extras["seed"]),
                extras["lineage"],
                int(extras.get("gpus", 1)),
                log,
            )
            version = upload_folder(s3, out, extras["bucket"], extras["output_key"])
        info["checkpoint_uri"] = f"s3://{extras['bucket']}/{extras['output_key']}/{version}"
        log(f"checkpoint written to {info['checkpoint_uri']} (CURRENT updated last)")
        pipes.report_custom_message(info)


if __name__ == "__main__":
    main()
