"""A snapshot of the whole Definitions: asset keys, lineage, partitions, checks, sensors, jobs."""

from dagster import AssetKey

from ifir_pipeline.definitions import defs

EXPECTED_ASSETS = {
    "source_corpora": (None, []),
    "mined_negatives": (None, ["source_corpora"]),
    "inverted_instructions": ("budget", ["mined_negatives", "source_corpora"]),
    "quality_checked_pairs": ("budget", ["inverted_instructions", "source_corpora"]),
    "trained_checkpoint": ("budget x recipe", ["quality_checked_pairs"]),
    "followir_scores": ("budget x recipe", ["trained_checkpoint"]),
    "budget_report": (None, ["followir_scores"]),
}


def _partitioning(spec) -> str | None:
    pdef = spec.partitions_def
    if pdef is None:
        return None
    if hasattr(pdef, "partitions_defs"):
        return " x ".join(d.name for d in pdef.partitions_defs)
    return "budget"


def test_assets_lineage_and_partitions():
    specs = {s.key.path[-1]: s for s in defs.resolve_all_asset_specs()}
    assert set(specs) == set(EXPECTED_ASSETS)
    for name, (partitioning, upstream) in EXPECTED_ASSETS.items():
        assert _partitioning(specs[name]) == partitioning, name
        assert sorted(d.asset_key.path[-1] for d in specs[name].deps) == upstream, name
    budget_keys = specs["inverted_instructions"].partitions_def.get_partition_keys()
    assert budget_keys == ["8", "16"]  # IFIR_BUDGETS in conftest
    recipes = specs["trained_checkpoint"].partitions_def.get_partitions_def_for_dimension("recipe").get_partition_keys()
    assert recipes == [
        "base",
        "no_instruction",
        "instruction_only",
        "dual_view",
        "diverse",
        "instruction_only@offline",
        "dual_view@offline",
    ]


def test_checks_sensors_jobs_and_resources():
    repo = defs.get_repository_def()
    checks = {(k.asset_key.path[-1], k.name) for k in repo.asset_graph.asset_check_keys}
    assert checks == {
        ("quality_checked_pairs", "pairs_expectations"),
        ("quality_checked_pairs", "no_evaluation_leakage"),
        ("quality_checked_pairs", "accepted_share"),
        ("quality_checked_pairs", "budget_filled"),
    }
    blocking = {c.name for c in repo.asset_graph.asset_check_keys if repo.asset_graph.get_check_spec(c).blocking}
    assert blocking == {"pairs_expectations", "no_evaluation_leakage", "accepted_share"}
    assert [s.name for s in repo.sensor_defs] == ["retrain_on_new_pairs"]
    assert {j.name for j in repo.get_all_jobs() if not j.name.startswith("__")} == {
        "prepare_pool",
        "synthesize_pairs",
        "train_and_score",
        "report",
    }
    assert set(defs.resources) >= {
        "store",
        "io_manager",
        "sources",
        "encoder",
        "synthesis",
        "quality",
        "training",
        "evaluation",
        "achievability",
    }
    # the embedded default replays recorded LLM answers; no key is needed or present
    assert defs.resources["synthesis"].backend == "recorded" and defs.resources["synthesis"].api_key is None
    assert defs.resources["achievability"].enabled
    assert repo.assets_defs_by_key[AssetKey("inverted_instructions")].op.pool == "llm_calls"
