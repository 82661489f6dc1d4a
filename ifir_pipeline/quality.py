"""Great Expectations 1.x suites for quality-checked pairs (GX has no polars source: convert at the boundary)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

# The schema of accepted pairs: what training reads, and what the GX suite requires.
ACCEPTED_COLUMNS = [
    "pair_id",
    "example_id",
    "pair_rank",
    "source",
    "query",
    "instruction_og",
    "instruction_reversed",
    "positive_id",
    "negative_id",
    "positive_text",
    "negative_text",
    "style",
    "similarity",
    "writer",
    "swap_probability",
    "control_instruction_og",
    "control_instruction_reversed",
    "judge_verdict",
    "verified_by",
]


@dataclass(frozen=True)
class QualityThresholds:
    min_text_chars: int = 3
    max_instruction_chars: int = 1200
    max_document_chars: int = 20000
    min_accepted_share: float = 0.5
    max_instruction_similarity: float = 0.9


def _validate(frame: pl.DataFrame, expectations: list[Any], name: str) -> dict[str, Any]:
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
    source = context.data_sources.add_pandas(name=f"{name}_source")
    asset = source.add_dataframe_asset(name=f"{name}_asset")
    batch_def = asset.add_batch_definition_whole_dataframe(f"{name}_batch")
    suite = context.suites.add(gx.ExpectationSuite(name=f"{name}_suite"))
    for e in expectations:
        suite.add_expectation(e)
    batch = batch_def.get_batch(batch_parameters={"dataframe": frame.to_pandas()})
    result = batch.validate(suite)
    failed = []
    for r in result.results:
        if not r.success:
            cfg = r.expectation_config
            failed.append(
                {
                    "expectation": cfg.type,
                    "column": cfg.kwargs.get("column") or cfg.kwargs.get("column_list"),
                    "unexpected_count": (r.result or {}).get("unexpected_count"),
                    "partial_unexpected_list": [
                        str(x)[:80] for x in ((r.result or {}).get("partial_unexpected_list") or [])[:3]
                    ],
                }
            )
    return {"success": bool(result.success), "evaluated": len(result.results), "failed": failed}


def validate_pairs(accepted: pl.DataFrame, th: QualityThresholds) -> dict[str, Any]:
    """Schema, non-empty and bounded texts, unique (query, instruction) per view, I' != I."""
    import great_expectations as gx

    ex = gx.expectations
    frame = accepted.with_columns(
        (
            pl.col("instruction_og").str.to_lowercase().str.strip_chars()
            != pl.col("instruction_reversed").str.to_lowercase().str.strip_chars()
        ).alias("views_differ"),
    )
    expectations: list[Any] = [
        ex.ExpectTableColumnsToMatchSet(
            column_set=[*ACCEPTED_COLUMNS, "views_differ"],
            exact_match=False,
        ),
        ex.ExpectColumnValuesToBeUnique(column="pair_id"),
        ex.ExpectCompoundColumnsToBeUnique(column_list=["query", "instruction_og"]),
        ex.ExpectCompoundColumnsToBeUnique(column_list=["query", "instruction_reversed"]),
        ex.ExpectColumnValuesToBeInSet(column="views_differ", value_set=[True]),
        ex.ExpectColumnValuesToBeBetween(column="similarity", min_value=0.0, max_value=th.max_instruction_similarity),
    ]
    for col, hi in (
        ("query", th.max_instruction_chars),
        ("instruction_og", th.max_instruction_chars),
        ("instruction_reversed", th.max_instruction_chars),
        ("positive_text", th.max_document_chars),
        ("negative_text", th.max_document_chars),
    ):
        expectations.append(ex.ExpectColumnValuesToNotBeNull(column=col))
        expectations.append(
            ex.ExpectColumnValueLengthsToBeBetween(column=col, min_value=th.min_text_chars, max_value=hi)
        )
    return _validate(frame, expectations, "pairs")


def validate_no_leakage(
    accepted: pl.DataFrame, eval_query_hashes: set[str], eval_doc_hashes: set[str]
) -> dict[str, Any]:
    import great_expectations as gx

    from ifir_pipeline.hashing import text_hash

    frame = accepted.select(
        pl.col("query").map_elements(text_hash, return_dtype=pl.Utf8).alias("query_hash"),
        pl.col("positive_text").map_elements(text_hash, return_dtype=pl.Utf8).alias("positive_hash"),
        pl.col("negative_text").map_elements(text_hash, return_dtype=pl.Utf8).alias("negative_hash"),
    )
    expectations = [
        gx.expectations.ExpectColumnValuesToNotBeInSet(
            column="query_hash", value_set=sorted(eval_query_hashes) or ["-"]
        ),
        gx.expectations.ExpectColumnValuesToNotBeInSet(
            column="positive_hash", value_set=sorted(eval_doc_hashes) or ["-"]
        ),
        gx.expectations.ExpectColumnValuesToNotBeInSet(
            column="negative_hash", value_set=sorted(eval_doc_hashes) or ["-"]
        ),
    ]
    return _validate(frame, expectations, "leakage")
