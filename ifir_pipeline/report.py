"""``budget_report``: recipes x budgets, deltas against ``base`` and ``instruction_only`` with paired
bootstrap 95% intervals over queries, a PNG plot and a markdown table.

Input: per-query score frames with columns ``budget: Int64, recipe, seed: Int64, task, query_id, metric,
value`` (one row per query per metric). Seeds are averaged per query before comparing recipes, so the
interval reflects query sampling at the seeds' mean.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import polars as pl

from ifir_pipeline.evaluation import paired_bootstrap

RECIPE_ORDER = ["base", "no_instruction", "instruction_only", "dual_view", "diverse"]
HEADLINE = [("cranfield-if-dev", "p-MRR"), ("cranfield-if-dev", "og_nDCG@5"), ("scifact-test", "nDCG@10")]


def _per_query_means(per_query: pl.DataFrame) -> pl.DataFrame:
    return per_query.group_by(["budget", "recipe", "task", "metric", "query_id"]).agg(
        pl.col("value").mean(), pl.col("seed").n_unique().alias("seeds")
    )


def _vector(pq: pl.DataFrame, budget: int, recipe: str, task: str, metric: str) -> dict[str, float]:
    sub = pq.filter(
        (pl.col("budget") == budget)
        & (pl.col("recipe") == recipe)
        & (pl.col("task") == task)
        & (pl.col("metric") == metric)
    )
    return dict(zip(sub["query_id"], sub["value"], strict=True))


def build_report(per_query: pl.DataFrame, n_boot: int = 2000) -> pl.DataFrame:
    """One row per (budget, recipe, task, metric) with mean, seeds and deltas (with 95% CIs)."""
    pq = _per_query_means(per_query)
    rows: list[dict[str, Any]] = []
    keys = pq.select("budget", "recipe", "task", "metric").unique().sort("budget", "recipe", "task", "metric")
    for budget, recipe, task, metric in keys.iter_rows():
        mine = _vector(pq, budget, recipe, task, metric)
        seeds = int(pq.filter((pl.col("budget") == budget) & (pl.col("recipe") == recipe))["seeds"].max() or 0)
        row: dict[str, Any] = {
            "budget": budget,
            "recipe": recipe,
            "task": task,
            "metric": metric,
            "mean": float(np.mean(list(mine.values()))) if mine else float("nan"),
            "seeds": seeds,
            "queries": len(mine),
        }
        for ref in ("base", "instruction_only"):
            other = _vector(pq, budget, ref, task, metric)
            if ref == "base" and not other:  # base is budget-independent: take it from any budget
                base_rows = pq.filter(
                    (pl.col("recipe") == "base") & (pl.col("task") == task) & (pl.col("metric") == metric)
                )
                other = dict(zip(base_rows["query_id"], base_rows["value"], strict=True))
            common = sorted(set(mine) & set(other))
            if recipe == ref or not common:
                row.update({f"delta_vs_{ref}": None, f"ci_low_vs_{ref}": None, f"ci_high_vs_{ref}": None})
                continue
            d, lo, hi = paired_bootstrap(
                np.array([mine[q] for q in common]), np.array([other[q] for q in common]), n_boot
            )
            row.update({f"delta_vs_{ref}": d, f"ci_low_vs_{ref}": lo, f"ci_high_vs_{ref}": hi})
        rows.append(row)
    schema = {
        "budget": pl.Int64,
        "recipe": pl.Utf8,
        "task": pl.Utf8,
        "metric": pl.Utf8,
        "mean": pl.Float64,
        "seeds": pl.Int64,
        "queries": pl.Int64,
        "delta_vs_base": pl.Float64,
        "ci_low_vs_base": pl.Float64,
        "ci_high_vs_base": pl.Float64,
        "delta_vs_instruction_only": pl.Float64,
        "ci_low_vs_instruction_only": pl.Float64,
        "ci_high_vs_instruction_only": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema)


def headline_table(report: pl.DataFrame) -> pl.DataFrame:
    """Wide view: one row per (budget, recipe), the headline metrics as columns."""
    wide = None
    for task, metric in HEADLINE:
        sub = report.filter((pl.col("task") == task) & (pl.col("metric") == metric)).select(
            "budget", "recipe", "seeds", pl.col("mean").round(2).alias(f"{metric} ({task})")
        )
        if sub.height == 0:
            continue
        wide = sub if wide is None else wide.join(sub.drop("seeds"), on=["budget", "recipe"], how="full", coalesce=True)
    if wide is None:
        return pl.DataFrame()
    order = {r: i for i, r in enumerate(RECIPE_ORDER)}
    return (
        wide.with_columns(pl.col("recipe").replace_strict(order, default=99).alias("_o"))
        .sort("budget", "_o")
        .drop("_o")
    )


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    return f"{v:.2f}" if isinstance(v, float) else str(v)


def to_markdown(frame: pl.DataFrame) -> str:
    cols = frame.columns
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.iter_rows():
        lines.append("| " + " | ".join(_fmt(v) for v in row) + " |")
    return "\n".join(lines)


def delta_markdown(report: pl.DataFrame, task: str, metric: str) -> str:
    sub = report.filter((pl.col("task") == task) & (pl.col("metric") == metric)).sort("budget", "recipe")
    lines = [
        f"### {metric} on {task}",
        "",
        "| budget | recipe | seeds | mean | vs base [95% CI] | vs instruction_only [95% CI] |",
        "|---|---|---|---|---|---|",
    ]
    for r in sub.iter_rows(named=True):

        def ci(ref: str, r: dict = r) -> str:
            d = r[f"delta_vs_{ref}"]
            return "" if d is None else f"{d:+.2f} [{r[f'ci_low_vs_{ref}']:+.2f}, {r[f'ci_high_vs_{ref}']:+.2f}]"

        lines.append(
            f"| {r['budget']} | {r['recipe']} | {r['seeds']} | {r['mean']:.2f} "
            f"| {ci('base')} | {ci('instruction_only')} |"
        )
    return "\n".join(lines)


def plot_png(report: pl.DataFrame) -> bytes:
    """p-MRR and nDCG against budget, one line per recipe (base drawn as a horizontal reference)."""
    plt = _pyplot()
    panels = [(t, m) for t, m in HEADLINE if report.filter((pl.col("task") == t) & (pl.col("metric") == m)).height]
    fig, axes = plt.subplots(1, max(len(panels), 1), figsize=(5.2 * max(len(panels), 1), 4), squeeze=False)
    for ax, (task, metric) in zip(axes[0], panels, strict=False):
        sub = report.filter((pl.col("task") == task) & (pl.col("metric") == metric))
        for recipe in RECIPE_ORDER:
            r = sub.filter(pl.col("recipe") == recipe).sort("budget")
            if r.height == 0:
                continue
            if recipe == "base":
                ax.axhline(float(r["mean"].mean()), color="grey", linestyle="--", label="base")
                continue
            ax.plot(r["budget"].to_list(), r["mean"].to_list(), marker="o", label=recipe)
            lo = (
                (r["mean"] + r["ci_low_vs_base"] - r["delta_vs_base"]).to_list()
                if r["delta_vs_base"].null_count() == 0
                else None
            )
            hi = (r["mean"] + r["ci_high_vs_base"] - r["delta_vs_base"]).to_list() if lo else None
            if lo and hi:
                ax.fill_between(r["budget"].to_list(), lo, hi, alpha=0.12)
        ax.set_xscale("log")
        ax.set_xlabel("budget (training examples)")
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} on {task}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _png(fig, dpi=110)


def score_histogram_png(negatives: pl.DataFrame) -> bytes:
    """Dense scores of the chosen negatives (per source) against their positives': where the margin guard bites."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    bins = [i / 50 for i in range(-10, 51)]
    positives = negatives.unique("example_id")["positive_score"].to_list()
    ax.hist(positives, bins=bins, alpha=0.5, label=f"positive ({len(positives)})", color="tab:green")
    for source, color in (("mined", "tab:red"), ("instruction_negative", "tab:purple")):
        scores = negatives.filter(pl.col("negative_source") == source)["negative_score"].to_list()
        if scores:
            ax.hist(scores, bins=bins, alpha=0.5, label=f"{source} ({len(scores)})", color=color)
    ax.set_xlabel("cosine(query, document)")
    ax.set_ylabel("count")
    ax.set_title("mined_negatives: score distribution")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig, dpi=100)


def _pyplot():
    """matplotlib's pyplot on the headless Agg backend (assets run without a display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig, dpi: int) -> bytes:
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    _pyplot().close(fig)
    return buf.getvalue()
