"""Resuming an interrupted training, masking across devices (DDP, gloo on CPU), training through Pipes."""

import json
import os

import polars as pl
import pytest
import torch
import torch.multiprocessing as mp

from ifir_pipeline.training import TrainConfig, recipe_rows, train_recipe
from ifir_pipeline_tests.conftest import free_port
from ifir_pipeline_tests.test_training import _pairs


def _crash_at_step_2():
    """A trainer callback that dies right after the step-2 checkpoint is saved (a power cut, kill -9)."""
    from transformers import TrainerCallback

    class Crash(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.global_step == 2:
                raise KeyboardInterrupt("power cut")

    return Crash()


def test_an_interrupted_training_resumes_from_its_last_checkpoint(tmp_path):
    rows = recipe_rows(_pairs(16), "dual_view", budget=32, seed=0)
    cfg = TrainConfig(batch_size=8, max_seq_length=24, save_steps=2)
    with pytest.raises(KeyboardInterrupt):
        train_recipe(rows, tmp_path / "ck", cfg, seed=0, lineage={}, callbacks=[_crash_at_step_2()])
    assert not (tmp_path / "ck").exists()  # nothing half-written where the checkpoint goes
    assert list((tmp_path / ".ck.trainer").glob("checkpoint-2"))
    info = train_recipe(rows, tmp_path / "ck", cfg, seed=0, lineage={})
    assert info["resumed"] and info["steps"] == 4
    assert (tmp_path / "ck" / "model.safetensors").exists()


def test_a_trainer_state_from_other_rows_or_settings_is_not_resumed(tmp_path):
    rows = recipe_rows(_pairs(16), "dual_view", budget=32, seed=0)
    cfg = TrainConfig(batch_size=8, max_seq_length=24, save_steps=2)
    with pytest.raises(KeyboardInterrupt):
        train_recipe(
            rows, tmp_path / "ck", cfg, seed=0, lineage={"recipe": "dual_view"}, callbacks=[_crash_at_step_2()]
        )
    said = []
    other = TrainConfig(batch_size=8, max_seq_length=24, save_steps=2, learning_rate=5e-5)
    info = train_recipe(rows, tmp_path / "ck", other, seed=0, lineage={"recipe": "dual_view"}, log=said.append)
    assert not info["resumed"] and info["steps"] == 4
    assert any("not resuming" in m and "training_args" in m for m in said)
    # and a state for other rows (another budget's pairs) is not resumed either
    with pytest.raises(KeyboardInterrupt):
        train_recipe(
            rows, tmp_path / "ck2", cfg, seed=0, lineage={"recipe": "dual_view"}, callbacks=[_crash_at_step_2()]
        )
    fewer = recipe_rows(_pairs(12), "dual_view", budget=24, seed=0)
    info = train_recipe(fewer, tmp_path / "ck2", cfg, seed=0, lineage={"recipe": "dual_view"}, log=said.append)
    assert not info["resumed"] and any("rows_hash" in m for m in said)
    assert not list(tmp_path.glob(".*.trainer"))


def _ddp_worker(rank: int, world: int, port: int, embs, labels, out):
    import torch.distributed as dist
    from torch import nn

    from ifir_pipeline.losses import DualViewMultipleNegativesRankingLoss

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    local = [e[rank * 2 : rank * 2 + 2].clone() for e in embs]
    loss = DualViewMultipleNegativesRankingLoss(nn.Identity(), gather_across_devices=True)
    out[rank] = float(loss.compute_loss_from_embeddings(local, labels[rank * 2 : rank * 2 + 2]))
    dist.destroy_process_group()


def test_masking_stays_right_when_views_land_on_different_devices():
    from torch import nn

    from ifir_pipeline.losses import DualViewMultipleNegativesRankingLoss

    torch.manual_seed(0)
    embs = [torch.nn.functional.normalize(torch.randn(4, 8), dim=-1) for _ in range(3)]
    # rank 0 holds the original views of pairs 7 and 9, rank 1 their reversed views
    labels = torch.tensor([7, 9, 7, 9])
    port = free_port()
    out = mp.Manager().dict()
    mp.spawn(_ddp_worker, args=(2, port, embs, labels, out), nprocs=2, join=True)
    single = DualViewMultipleNegativesRankingLoss(nn.Identity()).compute_loss_from_embeddings(embs, labels)
    assert abs((out[0] + out[1]) / 2 - float(single)) < 1e-5


def _uneven_worker(rank: int, world: int, port: int, embs, labels, out):
    import torch.distributed as dist
    from torch import nn

    from ifir_pipeline.losses import DualViewMultipleNegativesRankingLoss

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    part = slice(0, 3) if rank == 0 else slice(3, 4)  # the last batch of an epoch: 3 rows here, 1 there
    loss = DualViewMultipleNegativesRankingLoss(nn.Identity(), gather_across_devices=True)
    out[rank] = float(loss.compute_loss_from_embeddings([e[part].clone() for e in embs], labels[part]))
    dist.destroy_process_group()


def test_an_uneven_last_batch_across_devices_neither_hangs_nor_changes_the_loss():
    from torch import nn

    from ifir_pipeline.losses import DualViewMultipleNegativesRankingLoss

    torch.manual_seed(1)
    embs = [torch.nn.functional.normalize(torch.randn(4, 8), dim=-1) for _ in range(3)]
    labels = torch.tensor([[0, 10, 20], [1, 11, 21], [1, 21, 11], [2, 10, 22]])  # row 3 shares row 0's positive
    port = free_port()
    out = mp.Manager().dict()
    ctx = mp.spawn(_uneven_worker, args=(2, port, embs, labels, out), nprocs=2, join=False)
    assert ctx.join(timeout=120) or ctx.join(timeout=60), "gather hung"
    single = DualViewMultipleNegativesRankingLoss(nn.Identity()).compute_loss_from_embeddings(embs, labels)
    assert abs((3 * out[0] + out[1]) / 4 - float(single)) < 1e-5


def test_training_runs_as_external_compute_through_pipes(tmp_path, tiny_train_beir, tiny_followir):
    from dagster import DagsterInstance, materialize

    from ifir_pipeline.definitions import ASSETS, build_resources
    from ifir_pipeline.partitions import budget_recipe_key
    from ifir_pipeline.resources import DataSources, QualitySettings, TrainingSettings

    resources = build_resources(
        str(tmp_path / "root"),
        sources=DataSources(
            train=[{"name": "tiny", "format": "beir", "path": str(tiny_train_beir)}],
            evaluation=[{"name": "tiny-if", "format": "followir", "path": str(tiny_followir)}],
        ),
        training=TrainingSettings(seeds=[3], batch_size=8, max_seq_length=32, execution="pipes_subprocess"),
        quality=QualitySettings(min_accepted_share=0.3),
    )
    instance = DagsterInstance.ephemeral()
    assert materialize(
        ASSETS, selection=["source_corpora", "mined_negatives"], resources=resources, instance=instance
    ).success
    assert materialize(
        ASSETS,
        selection=["inverted_instructions", "quality_checked_pairs"],
        partition_key="8",
        resources=resources,
        instance=instance,
    ).success
    res = materialize(
        ASSETS,
        selection=["trained_checkpoint"],
        partition_key=budget_recipe_key(8, "instruction_only"),
        resources=resources,
        instance=instance,
    )
    assert res.success
    logs = [e.message for e in instance.all_logs(res.run_id)]
    assert any("step 1/1 loss" in m for m in logs)  # the child's log lines reached the Dagster event log
    meta = res.asset_materializations_for_node("trained_checkpoint")[0].metadata
    path = meta["checkpoint_path"].value
    assert (
        json.loads((__import__("pathlib").Path(path) / "ifir_lineage.json").read_text())["recipe"] == "instruction_only"
    )


def test_a_failed_write_leaves_the_previous_materialization_readable(tmp_path, monkeypatch):
    from ifir_pipeline.io_manager import read_artifact, write_artifact

    folder = tmp_path / "followir_scores" / "8" / "dual_view"
    write_artifact(folder, {"summary": pl.DataFrame({"v": [1.0]}), "meta": {"run": 1}})

    def boom(self, *a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", boom)
    with pytest.raises(OSError):
        write_artifact(folder, {"summary": pl.DataFrame({"v": [2.0]}), "meta": {"run": 2}})
    monkeypatch.undo()
    kept = read_artifact(folder)
    assert kept["meta"] == {"run": 1} and kept["summary"]["v"].to_list() == [1.0]
    left = [p.name for p in folder.parent.iterdir() if not p.name.endswith(".lock")]
    assert left == ["dual_view"]  # no staging folder left behind
