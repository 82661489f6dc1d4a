"""``budget_report``: recipes x budgets, deltas against ``base``, ``instruction_only`` and the same recipe
written by the control writer (``<recipe>@offline``), with seed-aware 95% intervals, a PNG plot and tables.

Input: per-query score frames with columns ``budget: Int64, recipe, seed: Int64, task, query_id, metric,
value`` (one row per query per metric and seed). Intervals come from a two-level bootstrap (training seeds
resampled, then queries, see :func:`~ifir_pipeline.evaluation.seed_query_bootstrap`), so they widen when
seeds disagree; every cell says how many seeds and queries it rests on.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import polars as pl

from ifir_pipeline.evaluation import seed_query_bootstrap
from ifir_pipeline.training import RECIPES, split_recipe

RECIPE_ORDER = list(RECIPES)
REFERENCES = ("base", "instruction_only", "writer_control")
HEADLINE = [("cranfield-if-dev", "p-MRR"), ("cranfield-if-dev", "og_nDCG@5"), ("scifact-test", "nDCG@10")]


def _matrix(pq: pl.DataFrame, budget: int | None, recipe: str, task: str, metric: str) -> tuple[np.ndarray, list[str]]:
    """``(seeds x queries)`` values and the query ids; ``budget=None`` takes any budget (for ``base``)."""
    cond = (pl.col("recipe") == recipe) & (pl.col("task") == task) & (pl.col("metric") == metric)
    if budget is not None:
        cond = cond & (pl.col("budget") == budget)
    sub = pq.filter(cond)
    if sub.height == 0:
        return np.zeros((0, 0)), []
    if budget is None:  # base is budget-independent: one copy of each (seed, query)
        sub = sub.unique(subset=["seed", "query_id"], keep="first")
    wide = sub.pivot(on="query_id", index="seed", values="value", aggregate_function="mean").sort("seed")
    queries = [c for c in wide.columns if c != "seed"]
    return wide.select(queries).to_numpy().astype(float), queries


def _reference(recipe: str, ref: str) -> str | None:
    """The recipe a row is compared with: a control-writer recipe is compared within its writer."""
    base, writer = split_recipe(recipe)
    if ref == "writer_control":
        return None if writer is not None or base not in ("instruction_only", "dual_view") else f"{base}@offline"
    if ref == "instruction_only" and writer is not None:
        ref = f"instruction_only@{writer}"
    if ref == "base" and recipe == "base" or ref == recipe:
        return None
    return ref


def build_report(per_query: pl.DataFrame, n_boot: int = 2000) -> pl.DataFrame:
    """One row per (budget, recipe, task, metric): mean, seeds, queries, and deltas with seed-aware 95% CIs
    against ``base``, ``instruction_only`` and (for instruction_only / dual_view) the control writer."""
    rows: list[dict[str, Any]] = []
    keys = per_query.select("budget", "recipe", "task", "metric").unique().sort("budget", "recipe", "task", "metric")
    for budget, recipe, task, metric in keys.iter_rows():
        mine, q_mine = _matrix(per_query, budget, recipe, task, metric)
        row: dict[str, Any] = {
            "budget": budget,
            "recipe": recipe,
            "task": task,
            "metric": metric,
            "mean": float(np.nanmean(mine)) if mine.size else float("nan"),
            "seeds": int(mine.shape[0]),
            "queries": len(q_mine),
        }
        for ref in REFERENCES:
            other_recipe = _reference(recipe, ref)
            other, q_other = (np.zeros((0, 0)), [])
            if other_recipe is not None:
                other, q_other = _matrix(per_query, budget, other_recipe, task, metric)
                if other_recipe == "base" and not q_other:
                    other, q_other = _matrix(per_query, None, "base", task, metric)
            common = sorted(set(q_mine) & set(q_other))
            if not common:
                row.update({f"delta_vs_{ref}": None, f"ci_low_vs_{ref}": None, f"ci_high_vs_{ref}": None})
                continue
            a = mine[:, [q_mine.index(q) for q in common]]
            b = other[:, [q_other.index(q) for q in common]]
            d, lo, hi = seed_query_bootstrap(a, b, n_boot)
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
    }
    for ref in REFERENCES:
        schema.update({f"delta_vs_{ref}": pl.Float64, f"ci_low_vs_{ref}": pl.Float64, f"ci_high_vs_{ref}": pl.Float64})
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
    return _ordered(wide)


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


def _ordered(frame: pl.DataFrame) -> pl.DataFrame:
    order = {r: i for i, r in enumerate(RECIPE_ORDER)}
    return (
        frame.with_columns(pl.col("recipe").replace_strict(order, default=99).alias("_o"))
        .sort("budget", "_o")
        .drop("_o")
    )


def delta_markdown(report: pl.DataFrame, task: str, metric: str) -> str:
    sub = _ordered(report.filter((pl.col("task") == task) & (pl.col("metric") == metric)))
    show_writer = sub["delta_vs_writer_control"].null_count() < sub.height
    head = "| budget | recipe | seeds | queries | mean | vs base [95% CI] | vs instruction_only [95% CI] |"
    lines = [f"### {metric} on {task}", "", head + (" vs offline writer [95% CI] |" if show_writer else "")]
    lines.append("|---" * (7 + show_writer) + "|")
    for r in sub.iter_rows(named=True):

        def ci(ref: str, r: dict = r) -> str:
            d = r[f"delta_vs_{ref}"]
            return "" if d is None else f"{d:+.2f} [{r[f'ci_low_vs_{ref}']:+.2f}, {r[f'ci_high_vs_{ref}']:+.2f}]"

        line = (
            f"| {r['budget']} | {r['recipe']} | {r['seeds']} | {r['queries']} | {r['mean']:.2f} "
            f"| {ci('base')} | {ci('instruction_only')} |"
        )
        lines.append(line + (f" {ci('writer_control')} |" if show_writer else ""))
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


METRIC_HELP = {
    "p-MRR": "-100..100: how far the documents whose label changed move when the instruction changes; higher means "
    "the ranking follows the changed instruction, 0 means it ignores instructions (FollowIR, x100)",
    "og_nDCG@5": "0..100: ranking quality under the original instructions (is retrieval still good?)",
    "changed_nDCG@5": "0..100: ranking quality under the changed instructions",
    "og_MAP": "0..100: mean average precision under the original instructions (FollowIR's MAP@1000)",
    "changed_MAP": "0..100: mean average precision under the changed instructions",
    "nDCG@10": "0..100: general retrieval without instructions (SciFact test): does training keep it?",
}


def _ci(row: dict[str, Any], ref: str) -> str:
    d = row.get(f"delta_vs_{ref}")
    if d is None:
        return ""
    return f"{d:+.2f} [{row[f'ci_low_vs_{ref}']:+.2f}, {row[f'ci_high_vs_{ref}']:+.2f}]"


def summary_rows(report: pl.DataFrame, task: str = "cranfield-if-dev") -> list[dict[str, str]]:
    """One row per (budget, recipe): the headline metrics and p-MRR's deltas with their 95% intervals."""
    rows = []
    pm = _ordered(report.filter((pl.col("task") == task) & (pl.col("metric") == "p-MRR")))
    others = {(r["budget"], r["recipe"], r["task"], r["metric"]): r for r in report.iter_rows(named=True)}
    for r in pm.iter_rows(named=True):
        og = others.get((r["budget"], r["recipe"], task, "og_nDCG@5"))
        gen = next(
            (v for (b, rc, _t, m), v in others.items() if b == r["budget"] and rc == r["recipe"] and m == "nDCG@10"),
            None,
        )
        rows.append(
            {
                "budget": str(r["budget"]) if r["recipe"] != "base" else "-",
                "recipe": r["recipe"],
                "seeds x queries": f"{r['seeds']} x {r['queries']}",
                "p-MRR": f"{r['mean']:.2f}",
                "vs base [95% CI]": _ci(r, "base"),
                "vs instruction_only": _ci(r, "instruction_only"),
                "vs offline writer": _ci(r, "writer_control"),
                "og nDCG@5": f"{og['mean']:.2f}" if og else "",
                "nDCG@10 (general)": f"{gen['mean']:.2f}" if gen else "",
            }
        )
    return rows


_COLORS = {
    "no_instruction": "#8c564b",
    "instruction_only": "#1f77b4",
    "dual_view": "#d62728",
    "diverse": "#2ca02c",
    "instruction_only@offline": "#9ecae1",
    "dual_view@offline": "#fc9272",
}


def svg_plot_markdown(report: pl.DataFrame, task: str = "cranfield-if-dev", metric: str = "p-MRR") -> str:
    """A compact SVG of ``metric`` against budget (base dashed), as markdown short enough (under 1,000
    characters) for the Dagster UI to render inline in the metadata table."""
    import base64

    sub = report.filter((pl.col("task") == task) & (pl.col("metric") == metric))
    if sub.height == 0:
        return "_no scores yet_"
    budgets = sorted({b for b, r in sub.select("budget", "recipe").iter_rows() if r != "base"})
    lo, hi = float(sub["mean"].min()), float(sub["mean"].max())
    span = max(hi - lo, 1e-6)
    w, h, pad = 260, 90, 12

    def x(b: int) -> int:
        return pad if len(budgets) < 2 else int(pad + (w - 4 * pad) * budgets.index(b) / (len(budgets) - 1))

    def y(v: float) -> int:
        return int(h - pad - (h - 2 * pad) * (v - lo) / span)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-size="9">']
    base = sub.filter(pl.col("recipe") == "base")
    if base.height:
        yb = y(float(base["mean"].mean()))
        parts.append(f'<path d="M{pad} {yb}H{w - 3 * pad}" stroke="#888" stroke-dasharray="3"/>')
    for recipe, color in _COLORS.items():
        r = sub.filter(pl.col("recipe") == recipe).sort("budget")
        if r.height == 0:
            continue
        pts = " ".join(f"{x(b)},{y(v)}" for b, v in zip(r["budget"], r["mean"], strict=True))
        if r.height == 1:  # one budget: a short mark instead of a line of one point
            pts = f"{x(r['budget'][0])},{y(r['mean'][0])} {x(r['budget'][0]) + 12},{y(r['mean'][0])}"
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{pts}"/>')
        last = r.row(-1, named=True)
        tx = x(last["budget"]) + (15 if r.height == 1 else 3)
        parts.append(f'<text x="{tx}" y="{y(last["mean"]) + 3}" fill="{color}">{recipe}</text>')
    parts.append("</svg>")
    svg = "".join(parts)
    md = f"![{metric} by budget](data:image/svg+xml;base64,{base64.b64encode(svg.encode()).decode()})"
    if len(md) >= 1000:  # too many recipes for an inline picture: the core ones only
        keep = ["base", "instruction_only", "dual_view"]
        return (
            svg_plot_markdown(report.filter(pl.col("recipe").is_in(keep)), task, metric)
            if set(sub["recipe"]) - set(keep)
            else md
        )
    return md
