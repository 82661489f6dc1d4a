"""GPU training path check (run on a lent GPU machine; it never runs in the tests).

Builds a randomly initialised BERT-base-sized encoder (weights cannot travel to the device machine), wraps
it as a SentenceTransformer with mean pooling, and times bf16 training steps with our dual-view loss and
with MultipleNegativesRankingLoss at the same batch: steps/s, examples/s, peak GPU memory.
Usage (on the GPU machine): python bench/gpu_training.py [--batch 128] [--steps 30] [--seq 256]
          (anywhere):       python bench/gpu_training.py --cpu-dry-run   (tiny config, checks the code path)
"""

from __future__ import annotations

import argparse
import json
import time

import torch


class Encoder(torch.nn.Module):
    """Token ids -> token embeddings, the interface sentence-transformers modules pass along."""

    def __init__(self, bert: torch.nn.Module) -> None:
        super().__init__()
        self.bert = bert

    def forward(self, features: dict) -> dict:
        out = self.bert(input_ids=features["input_ids"], attention_mask=features["attention_mask"])
        features["token_embeddings"] = out.last_hidden_state
        return features


class MeanPool(torch.nn.Module):
    def forward(self, features: dict) -> dict:
        mask = features["attention_mask"].unsqueeze(-1).to(features["token_embeddings"].dtype)
        features["sentence_embedding"] = (features["token_embeddings"] * mask).sum(1) / mask.sum(1)
        return features


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--cpu-dry-run", action="store_true")
    args = p.parse_args()
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from transformers import BertConfig, BertModel

    from ifir_pipeline.losses import DualViewMultipleNegativesRankingLoss

    dry = args.cpu_dry_run
    device = "cpu" if dry else "cuda"
    if not dry and not torch.cuda.is_available():
        raise SystemExit("needs a GPU (or --cpu-dry-run)")
    if dry:
        args.batch, args.steps, args.seq = 8, 2, 16
        size = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128}
    else:
        size = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072}
    torch.manual_seed(0)
    model = SentenceTransformer(
        modules=[Encoder(BertModel(BertConfig(vocab_size=30522, **size))), MeanPool()], device=device
    )
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)

    def sync() -> None:
        if not dry:
            torch.cuda.synchronize()

    results = {}
    for name, loss in (
        ("dual_view", DualViewMultipleNegativesRankingLoss(model)),
        ("mnrl", MultipleNegativesRankingLoss(model)),
    ):
        if not dry:
            torch.cuda.reset_peak_memory_stats()
        times = []
        for step in range(args.steps + 3):
            feats = [
                {
                    "input_ids": torch.randint(1000, 30000, (args.batch, args.seq), device=device),
                    "attention_mask": torch.ones(args.batch, args.seq, device=device, dtype=torch.long),
                }
                for _ in range(3)
            ]
            labels = torch.arange(args.batch, device=device) // 2  # two views per pair
            sync()
            t0 = time.perf_counter()
            with torch.autocast(device, dtype=torch.bfloat16, enabled=not dry):
                value = loss(feats, labels if name == "dual_view" else None)
            value.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            sync()
            if step >= 3:
                times.append(time.perf_counter() - t0)
        mean = sum(times) / len(times)
        results[name] = {
            "steps_per_s": round(1 / mean, 3),
            "examples_per_s": round(args.batch / mean, 1),
            "peak_mem_gb": 0.0 if dry else round(torch.cuda.max_memory_allocated() / 2**30, 2),
        }
        print(name, results[name], flush=True)
    headline = {
        "device": "cpu (dry run)" if dry else torch.cuda.get_device_name(0),
        "batch": args.batch,
        "seq": args.seq,
        "bf16": not dry,
        "ours_steps_per_s": results["dual_view"]["steps_per_s"],
        "peer_steps_per_s": results["mnrl"]["steps_per_s"],
        "ratio": round(results["dual_view"]["steps_per_s"] / results["mnrl"]["steps_per_s"], 3),
    }
    print(json.dumps(headline))


if __name__ == "__main__":
    main()
