"""From mined negatives to synthesis inputs, and from synthesis output to quality-checked pairs.

``quality_checked_pairs`` tables:
- ``accepted``: the first ``budget`` pairs (pair order) that pass every check; columns ``pair_id, example_id,
  pair_rank, source, query, instruction_og, instruction_reversed, positive_id, negative_id, positive_text,
  negative_text, style, similarity``
- ``rejected``: every other synthesized pair with its ``rejection_reason`` (see verification.REASON_CODES)
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import polars as pl

from ifir_pipeline.hashing import text_hash
from ifir_pipeline.quality import ACCEPTED_COLUMNS, QualityThresholds, validate_no_leakage, validate_pairs
from ifir_pipeline.training import TRAINED_RECIPES
from ifir_pipeline.verification import VerifyConfig, jaccard, verify_frame


def pairs_needed(recipe: str, budget: int) -> int:
    """Accepted pairs a recipe trains on at ``budget`` (dual_view: both views of budget/2 pairs)."""
    from ifir_pipeline.training import split_recipe

    return budget // 2 if split_recipe(recipe)[0] == "dual_view" else budget


def doc_texts(documents: pl.DataFrame) -> dict[str, str]:
    return {
        d: f"{t} {x}".strip()
        for d, t, x in zip(documents["doc_id"], documents["title"], documents["text"], strict=True)
    }


CHECK_COLUMNS = ("swap_probability", "swap_achievable", "achievability_reason", "verdict_source")


def synthesis_inputs(
    examples: pl.DataFrame,
    negatives: pl.DataFrame,
    documents: pl.DataFrame,
    budget: int,
    oversample: float,
    achievable_first: bool = False,
) -> pl.DataFrame:
    """The first ``ceil(budget * oversample)`` pairs, with texts and the achievability verdicts.

    A pair is (example, one of its negatives). Pair order: every example's best negative first, in sample
    order, then every example's second negative, and so on; so budgets stay nested, small budgets have one pair
    per query, and large budgets can exceed the number of queries. Within an example, source-provided
    instruction negatives (rank 0) come before mined ones. With ``achievable_first`` (the achievability check
    on), pairs with a recorded achievable verdict come first, then the rest that pass, then those that do not,
    each tier in that order: the smallest budgets are the surest pairs, and pairs that cannot swap are written
    last (and skipped).
    """
    order = ["example_id", "preference"] if "preference" in negatives.columns else ["example_id", "rank"]
    ranked = negatives.sort(order).with_columns(pl.int_range(pl.len()).over("example_id").alias("negative_index"))
    checks = [c for c in CHECK_COLUMNS if c in ranked.columns]
    n = math.ceil(budget * oversample)
    texts = doc_texts(documents)
    joined = examples.join(
        ranked.select("example_id", "negative_id", "negative_index", *checks), on="example_id", how="inner"
    )
    if achievable_first and {"swap_achievable", "verdict_source"} <= set(checks):
        tier = (
            pl.when(pl.col("swap_achievable") & (pl.col("verdict_source") == "recorded"))
            .then(0)
            .when(pl.col("swap_achievable").fill_null(True))
            .then(1)
            .otherwise(2)
        )
        joined = joined.with_columns(tier.alias("_tier")).sort("_tier", "negative_index", "sample_rank").drop("_tier")
    else:
        joined = joined.sort("negative_index", "sample_rank")
    chosen = joined.head(n).with_columns(
        (pl.col("example_id") + pl.lit("#") + pl.col("negative_index").cast(pl.Utf8)).alias("pair_id"),
        pl.int_range(pl.len(), dtype=pl.UInt32).alias("pair_rank"),
    )
    return chosen.with_columns(
        pl.col("positive_id").replace_strict(texts, return_dtype=pl.Utf8).alias("positive_text"),
        pl.col("negative_id").replace_strict(texts, return_dtype=pl.Utf8).alias("negative_text"),
    )


def pool_capacity(negatives: pl.DataFrame, examples: pl.DataFrame) -> dict[str, Any]:
    """How many pairs the mined pool holds, and how many of them the check lets through, per source."""
    with_src = negatives.join(examples.select("example_id", "source"), on="example_id", how="left")
    out: dict[str, Any] = {"pairs": with_src.height}
    if "swap_achievable" in with_src.columns:
        ok = with_src.filter(pl.col("swap_achievable").fill_null(True))
        out["achievable_pairs"] = ok.height
        out["achievable_by_source"] = dict(ok.group_by("source").len().sort("source").iter_rows())
    return out


def quality_check(
    synth: pl.DataFrame,
    documents: pl.DataFrame,
    eval_hashes: pl.DataFrame,
    budget: int,
    verify: VerifyConfig,
    thresholds: QualityThresholds,
    judge=None,
) -> tuple[dict[str, pl.DataFrame], dict[str, Any]]:
    texts = doc_texts(documents)
    q_hashes = set(eval_hashes.filter(pl.col("kind") == "query")["hash"])
    d_hashes = set(eval_hashes.filter(pl.col("kind") == "document")["hash"])
    leaked = {
        r["pair_id"]
        for r in synth.iter_rows(named=True)
        if text_hash(r["query"]) in q_hashes
        or text_hash(texts.get(r["positive_id"], "")) in d_hashes
        or text_hash(texts.get(r["negative_id"], "")) in d_hashes
    }
    synth = synth.sort("pair_rank")
    verdicts = verify_frame(synth, texts, verify, leaked, judge=judge)
    checked = synth.with_columns(
        *verdicts.get_columns(),
        pl.col("positive_id").replace_strict(texts, default="", return_dtype=pl.Utf8).alias("positive_text"),
        pl.col("negative_id").replace_strict(texts, default="", return_dtype=pl.Utf8).alias("negative_text"),
        pl.struct("instruction_og", "instruction_reversed")
        .map_elements(
            lambda r: jaccard(r["instruction_og"] or "", r["instruction_reversed"] or ""), return_dtype=pl.Float64
        )
        .alias("similarity"),
    )
    passing = checked.filter(pl.col("rejection_reason").is_null())
    accepted = passing.head(budget).select(ACCEPTED_COLUMNS)
    surplus = passing.slice(budget).with_columns(pl.lit("over_budget").alias("rejection_reason"))
    rejected = pl.concat([checked.filter(pl.col("rejection_reason").is_not_null()), surplus])
    considered = checked.height
    not_achievable = checked.filter(pl.col("rejection_reason") == "swap_not_achievable")
    # the writer's pass rate is measured on the pairs that can swap
    can_swap = considered - not_achievable.height
    pass_rate = passing.height / max(can_swap, 1)
    gx_pairs = (
        validate_pairs(accepted, thresholds)
        if accepted.height
        else {"success": False, "evaluated": 0, "failed": [{"expectation": "non_empty"}]}
    )
    gx_leak = (
        validate_no_leakage(accepted, q_hashes, d_hashes)
        if accepted.height
        else {"success": True, "evaluated": 0, "failed": []}
    )
    gate = {
        "gx_pairs": gx_pairs,
        "gx_leakage": gx_leak,
        "pass_rate": round(pass_rate, 4),
        "pass_rate_ok": pass_rate >= thresholds.min_accepted_share and can_swap > 0,
        "budget_filled": accepted.height >= budget,
        # which trained recipes have the pairs they need (dual_view trains on budget/2 pairs)
        "recipes_ready": {r: accepted.height >= pairs_needed(r, budget) for r in TRAINED_RECIPES},
        "accepted": accepted.height,
        "budget": budget,
    }
    if "set" in eval_hashes.columns:
        gate["eval_fingerprints"] = {
            f"{s}/{k}": n for s, k, n in eval_hashes.group_by("set", "kind").len().sort("set", "kind").iter_rows()
        }
    gate["passed"] = bool(gx_pairs["success"] and gx_leak["success"] and gate["pass_rate_ok"])
    stats = {
        "considered": considered,
        "accepted": accepted.height,
        "rejected": rejected.filter(pl.col("rejection_reason") != "over_budget").height,
        "over_budget": surplus.height,
        "pass_rate": round(pass_rate, 4),
        "pairs_that_can_swap": can_swap,
        "swap_not_achievable": not_achievable.height,
        "swap_not_achievable_by_reason": dict(
            Counter(r or "unspecified" for r in not_achievable["achievability_reason"].to_list())
        )
        if "achievability_reason" in not_achievable.columns
        else {},
        "rejection_reasons": dict(Counter(rejected["rejection_reason"].to_list())),
        "accepted_styles": dict(Counter(accepted["style"].to_list())),
        "accepted_by_writer": dict(Counter(accepted["writer"].to_list())) if "writer" in accepted.columns else {},
        "accepted_by_source": dict(Counter(accepted["source"].to_list())),
        "verifier": "anthropic-judge" if judge is not None else "offline-lexical",
        "verified_by": dict(Counter(v for v in checked["verified_by"].to_list() if v)),
        "lexical_would_reject_llm_rows": int(
            checked.filter(
                pl.col("verified_by").str.starts_with("writer-llm") & (pl.col("lexical_verdict") != "swapped")
            ).height
        ),
        "judge_cost_usd": round(getattr(judge, "spent_usd", 0.0), 6),
    }
    return {"accepted": accepted, "rejected": rejected}, {"gate": gate, **stats}
