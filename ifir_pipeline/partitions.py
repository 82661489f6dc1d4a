"""Partitions: the data budget from synthesis on, budget x recipe from training on.

Budgets come from ``IFIR_BUDGETS`` (comma-separated, default ``250,500,1000,2000``) so a user sizes them to
their machine without editing code; they are read once, when the definitions load.
"""

from __future__ import annotations

import os

from dagster import MultiPartitionKey, MultiPartitionsDefinition, StaticPartitionsDefinition

from ifir_pipeline.training import RECIPES

DEFAULT_BUDGETS = "250,500,1000,2000"


def budgets() -> list[str]:
    """The configured budgets: even numbers >= 2 (``dual_view`` trains on budget / 2 pairs, two views each)."""
    raw = os.environ.get("IFIR_BUDGETS", DEFAULT_BUDGETS)
    try:
        values = sorted({int(x) for x in raw.split(",") if x.strip()})
    except ValueError:
        raise ValueError(
            f"IFIR_BUDGETS must be comma-separated whole numbers like {DEFAULT_BUDGETS!r}, got {raw!r}"
        ) from None
    if not values or min(values) < 2:
        raise ValueError(f"IFIR_BUDGETS must list budgets >= 2, got {raw!r}")
    odd = [v for v in values if v % 2]
    if odd:
        raise ValueError(
            f"IFIR_BUDGETS: budgets must be even (dual_view trains on budget/2 pairs, two views each), got {odd}"
        )
    return [str(v) for v in values]


budget_partitions = StaticPartitionsDefinition(budgets())
recipe_partitions = StaticPartitionsDefinition(list(RECIPES))
budget_recipe_partitions = MultiPartitionsDefinition({"budget": budget_partitions, "recipe": recipe_partitions})


def budget_recipe_key(budget: str | int, recipe: str) -> MultiPartitionKey:
    return MultiPartitionKey({"budget": str(budget), "recipe": recipe})
