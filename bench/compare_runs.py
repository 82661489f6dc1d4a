"""Compare the same recipes across two artifact stores (two pair sets, two writers, two code versions).

Reads every followir_scores partition of each store and prints, per task, metric, budget and recipe, the mean
in each store and the difference B - A with a seed-aware 95% interval (training seeds resampled, then the
shared queries; see ifir_pipeline.evaluation.seed_query_bootstrap). Also prints, per store, dual_view vs
instruction_only. Not a speed benchmark: the JSON line carries the headline differences.
Usage: python bench/compare_runs.py --a DIR --a-label today --b DIR --b-label achievable [--metric p-MRR]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402,F401


def per_query(root: Path):
    import polars as pl

    from ifir_pipeline.io_manager import read_artifact

    parts = [
        read_artifact(f)["per_query"]
        for f in sorted((root / "assets" / "followir_scores").glob("*/*"))
        if f.is_dir() and not f.name.startswith(".")
    ]
    return pl.concat(parts)


def matrix(pq, budget, recipe, task, metric):
    import polars as pl

    sub = pq.filter(
        (pl.col("recipe") == recipe)
        & (pl.col("task") == task)
        & (pl.col("metric") == metric)
        & ((pl.col("budget") == budget) | (pl.lit(recipe == "base")))
    ).unique(subset=["seed", "query_id"], keep="first")
    wide = sub.pivot(on="query_id", index="seed", values="value").sort("seed")
    cols = sorted(c for c in wide.columns if c != "seed")
    return wide.select(cols).to_numpy().astype(float), cols


def main() -> None:
    from ifir_pipeline.evaluation import seed_query_bootstrap

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--a", required=True)
    p.add_argument("--a-label", default="A")
    p.add_argument("--b", required=True)
    p.add_argument("--b-label", default="B")
    p.add_argument("--task", default="cranfield-if-dev")
    p.add_argument("--metrics", default="p-MRR,og_nDCG@5")
    args = p.parse_args()
    a, b = (
        per_query(Path(args.a) / "art" if (Path(args.a) / "art").exists() else Path(args.a)),
        per_query(Path(args.b) / "art" if (Path(args.b) / "art").exists() else Path(args.b)),
    )
    budgets = sorted(set(b["budget"].to_list()) & set(a["budget"].to_list()) - {0}) or sorted(set(b["budget"]))
    recipes = [r for r in ("base", "instruction_only", "dual_view") if r in set(a["recipe"]) & set(b["recipe"])]
    headline = {}
    for metric in args.metrics.split(","):
        print(f"\n### {metric} on {args.task}\n")
        print(
            f"| budget | recipe | seeds | {args.a_label} | {args.b_label} | {args.b_label} - {args.a_label} [95% CI] |"
        )
        print("|---|---|---|---|---|---|")
        for budget in budgets:
            for recipe in recipes:
                ma, qa = matrix(a, budget, recipe, args.task, metric)
                mb, qb = matrix(b, budget, recipe, args.task, metric)
                common = sorted(set(qa) & set(qb))
                ia, ib = [qa.index(q) for q in common], [qb.index(q) for q in common]
                d, lo, hi = seed_query_bootstrap(mb[:, ib], ma[:, ia])
                print(
                    f"| {budget} | {recipe} | {ma.shape[0]}/{mb.shape[0]} | {ma.mean():.2f} | {mb.mean():.2f} | "
                    f"{d:+.2f} [{lo:+.2f}, {hi:+.2f}] |"
                )
                headline[f"{metric}/{budget}/{recipe}/{args.b_label}-{args.a_label}"] = round(d, 2)
            for label, pq in ((args.a_label, a), (args.b_label, b)):
                dv, qd = matrix(pq, budget, "dual_view", args.task, metric)
                io, qi = matrix(pq, budget, "instruction_only", args.task, metric)
                common = sorted(set(qd) & set(qi))
                d, lo, hi = seed_query_bootstrap(
                    dv[:, [qd.index(q) for q in common]], io[:, [qi.index(q) for q in common]]
                )
                print(f"| {budget} | dual_view - instruction_only ({label}) | | | | {d:+.2f} [{lo:+.2f}, {hi:+.2f}] |")
                headline[f"{metric}/{budget}/dual_view-instruction_only/{label}"] = round(d, 2)
    print(json.dumps(headline))


if __name__ == "__main__":
    main()
