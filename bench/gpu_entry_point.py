"""The ECS container's training path on a GPU machine, against the in-process path at the same budget.

Both train the packaged encoder with our dual-view loss on the same recipe rows (bundled SciFact pairs) and
TrainConfig (precision "auto": bf16 on a GPU that supports it): once in this process (`train_recipe`, what
`execution="in_process"` runs) and once as the container entry point's training step, a separate
`python -m ifir_pipeline.train_entry --worker` process (what the ECS task runs after fetching its inputs, and
what `torchrun` launches per GPU). Prints examples/s, steps/s, precision and device for both, and the ratio.
Usage (GPU machine): python bench/gpu_entry_point.py [--budget 2048] [--batch 128] [--seq 256]
          (anywhere):  python bench/gpu_entry_point.py --cpu-dry-run   (tiny budget: checks the code path)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402,F401


def pairs(n: int):
    import polars as pl

    from ifir_pipeline.loaders import default_training_specs, load_training_source

    src = load_training_source(next(s for s in default_training_specs() if s.name == "scifact"))
    texts = [f"{t} {x}" for t, x in zip(src.documents["title"], src.documents["text"], strict=True)]
    q = src.examples["query"].to_list()
    return pl.DataFrame(
        {
            "pair_rank": list(range(n)),
            "query": [q[i % len(q)] for i in range(n)],
            "instruction_og": ["Relevant documents report a randomized trial in adults."] * n,
            "instruction_reversed": ["Documents about randomized trials are not relevant; cohort studies are."] * n,
            "positive_text": [texts[(2 * i) % len(texts)] for i in range(n)],
            "negative_text": [texts[(2 * i + 1) % len(texts)] for i in range(n)],
        }
    )


def main() -> None:
    import torch

    from ifir_pipeline.training import TrainConfig, recipe_rows, train_recipe

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--budget", type=int, default=2048)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--cpu-dry-run", action="store_true")
    args = p.parse_args()
    if args.cpu_dry_run:
        args.budget, args.batch, args.seq = 16, 8, 32
    elif not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run with --cpu-dry-run here, or on the GPU machine")
    rows = recipe_rows(pairs(args.budget // 2), "dual_view", args.budget, seed=0)
    cfg = TrainConfig(batch_size=args.batch, max_seq_length=args.seq, save_steps=10**9)
    out: dict = {"budget": args.budget, "batch": args.batch, "seq": args.seq}
    with tempfile.TemporaryDirectory(prefix="ifir-gpu-entry-") as tmp:
        t0 = time.perf_counter()
        info = train_recipe(rows, Path(tmp) / "in_process", cfg, 0, {"recipe": "dual_view"})
        out["in_process"] = {
            k: info[k] for k in ("examples_per_second", "steps", "train_seconds", "precision", "device")
        }
        out["in_process"]["wall_s"] = round(time.perf_counter() - t0, 2)
        rows_path = Path(tmp) / "rows.parquet"
        rows.write_parquet(rows_path)
        spec = Path(tmp) / "worker.json"
        spec.write_text(
            json.dumps(
                {
                    "rows": str(rows_path),
                    "out": str(Path(tmp) / "entry"),
                    "config": asdict(cfg),
                    "seed": 0,
                    "lineage": {"recipe": "dual_view"},
                }
            )
        )
        t0 = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "ifir_pipeline.train_entry", "--worker", str(spec)], capture_output=True, text=True
        )
        if done.returncode != 0:
            raise SystemExit(f"entry point failed:\n{done.stderr[-3000:]}")
        lineage = json.loads((Path(tmp) / "entry" / "ifir_lineage.json").read_text())
        out["entry_point"] = {
            k: lineage[k] for k in ("examples_per_second", "steps", "train_seconds", "precision", "device")
        }
        out["entry_point"]["wall_s"] = round(time.perf_counter() - t0, 2)
    if torch.cuda.is_available():
        out["gpu"] = torch.cuda.get_device_name(0)
        out["peak_gpu_memory_gb"] = round(torch.cuda.max_memory_allocated() / 1e9, 2)
    for k in ("in_process", "entry_point"):
        out[k]["steps_per_second"] = round(out[k]["steps"] / max(out[k]["train_seconds"], 1e-9), 3)
    print(json.dumps(out, indent=2))
    print(
        json.dumps(
            {
                "entry_point_examples_per_s": out["entry_point"]["examples_per_second"],
                "in_process_examples_per_s": out["in_process"]["examples_per_second"],
                "ratio": round(
                    out["entry_point"]["examples_per_second"] / max(out["in_process"]["examples_per_second"], 1e-9), 3
                ),
                "precision": out["entry_point"]["precision"],
                "device": out["entry_point"]["device"],
            }
        )
    )


if __name__ == "__main__":
    main()
