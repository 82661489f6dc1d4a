"""Time per training step: our DualViewMultipleNegativesRankingLoss against sentence-transformers'
MultipleNegativesRankingLoss, same batch (32 dual-view rows), same data, same model, one process.

Steps alternate between the two losses (A B A B ...) after a warm-up, so drift in machine load hits both.
Usage: python bench/training.py [--steps 8] [--batch 32]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402,F401


def batches(n_steps: int, batch: int):
    import polars as pl

    from ifir_pipeline.loaders import default_training_specs, load_training_source
    from ifir_pipeline.training import recipe_rows

    src = load_training_source(next(s for s in default_training_specs() if s.name == "scifact"))
    texts = [f"{t} {x}" for t, x in zip(src.documents["title"], src.documents["text"], strict=True)]
    n_pairs = n_steps * batch // 2
    pairs = pl.DataFrame(
        {
            "pair_rank": list(range(n_pairs)),
            "query": src.examples["query"].head(n_pairs).to_list(),
            "instruction_og": ["Relevant documents must report a randomized trial."] * n_pairs,
            "instruction_reversed": ["Documents about randomized trials are not relevant."] * n_pairs,
            "positive_text": texts[:n_pairs],
            "negative_text": texts[n_pairs : 2 * n_pairs],
        }
    )
    rows = recipe_rows(pairs, "dual_view", n_steps * batch, 0)
    return [rows.slice(i * batch, batch) for i in range(n_steps)]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--max-seq-length", type=int, default=128)
    args = p.parse_args()
    import torch
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from ifir_pipeline.encoders import load_encoder
    from ifir_pipeline.losses import DualViewMultipleNegativesRankingLoss

    torch.manual_seed(0)
    model = load_encoder("packaged", max_seq_length=args.max_seq_length)
    model.train()
    losses = {"ours": DualViewMultipleNegativesRankingLoss(model), "mnrl": MultipleNegativesRankingLoss(model)}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-7)  # tiny lr: the model barely moves between timed steps

    def step(name: str, b) -> float:
        feats = [model.preprocess(b[c].to_list()) for c in ("anchor", "positive", "negative")]
        labels = torch.tensor(b["label"].to_list())
        t0 = time.perf_counter()
        loss = losses[name](feats, labels if name == "ours" else None)
        loss.backward()
        opt.step()
        opt.zero_grad()
        return time.perf_counter() - t0

    data = batches(args.steps + 1, args.batch)
    step("ours", data[0]), step("mnrl", data[0])  # warm-up
    times: dict[str, list[float]] = {"ours": [], "mnrl": []}
    for b in data[1:]:
        for name in ("ours", "mnrl") if len(times["ours"]) % 2 == 0 else ("mnrl", "ours"):
            times[name].append(step(name, b))
    ours, mnrl = statistics.median(times["ours"]), statistics.median(times["mnrl"])
    print(
        f"median step: ours {ours:.3f}s, MultipleNegativesRankingLoss {mnrl:.3f}s over {args.steps} steps each (batch {args.batch})"
    )
    print(
        json.dumps(
            {
                "ours_s_per_step": round(ours, 3),
                "peer_s_per_step": round(mnrl, 3),
                "overhead_pct": round(100 * (ours / mnrl - 1), 2),
            }
        )
    )


if __name__ == "__main__":
    main()
