import json

import polars as pl
import pytest

from ifir_pipeline.training import PairedViewBatchSampler, TrainConfig, recipe_rows, train_recipe


def _pairs(n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "pair_rank": list(range(n)),
            "query": [f"query {i}" for i in range(n)],
            "instruction_og": [f"must discuss alpha {i}" for i in range(n)],
            "instruction_reversed": [f"must discuss beta {i}" for i in range(n)],
            "positive_text": [f"alpha document {i}" for i in range(n)],
            "negative_text": [f"beta document {i}" for i in range(n)],
        }
    )


@pytest.mark.parametrize("recipe", ["no_instruction", "instruction_only", "dual_view", "diverse"])
def test_every_recipe_trains_on_exactly_the_budget(recipe):
    rows = recipe_rows(_pairs(20), recipe, budget=12, seed=1)
    assert rows.height == 12
    distinct = rows["label"].list.first().n_unique()
    assert distinct == (6 if recipe == "dual_view" else 12)


def test_dual_view_rows_swap_labels_and_recipes_read_query_plus_instruction():
    rows = recipe_rows(_pairs(4), "dual_view", budget=4, seed=0)
    og, rev = rows.row(0, named=True), rows.row(1, named=True)
    assert og["anchor"] == "query 0 must discuss alpha 0" and rev["anchor"] == "query 0 must discuss beta 0"
    assert (og["positive"], og["negative"]) == (rev["negative"], rev["positive"])
    assert recipe_rows(_pairs(4), "no_instruction", 4, 0)["anchor"][0] == "query 0"
    with pytest.raises(ValueError, match="needs 8 accepted pairs"):
        recipe_rows(_pairs(4), "instruction_only", 8, 0)


def test_batch_sampler_keeps_both_views_in_one_batch_and_is_seeded():
    from datasets import Dataset

    ds = Dataset.from_polars(recipe_rows(_pairs(25), "dual_view", budget=50, seed=0))
    s = PairedViewBatchSampler(ds, batch_size=8, drop_last=False, seed=3)
    batches = list(s)
    assert sorted(i for b in batches for i in b) == list(range(50))
    groups = [lab[0] for lab in ds["label"]]
    for b in batches:
        assert len(b) <= 8
        for g in {groups[i] for i in b}:
            assert sum(groups[i] == g for i in b) == 2
    assert batches == list(PairedViewBatchSampler(ds, batch_size=8, drop_last=False, seed=3))
    s.set_epoch(1)
    assert list(s) != batches


def test_tiny_training_run_writes_a_loadable_checkpoint_with_lineage(tmp_path):
    from sentence_transformers import SentenceTransformer

    rows = recipe_rows(_pairs(8), "dual_view", budget=16, seed=0)
    cfg = TrainConfig(batch_size=8, max_seq_length=32, save_steps=1000)
    info = train_recipe(rows, tmp_path / "ck", cfg, seed=0, lineage={"recipe": "dual_view", "budget": 16})
    assert info["steps"] == 2 and info["examples"] == 16 and info["pairs"] == 8
    assert info["precision"] == "fp32" and info["device"] == "cpu"
    lineage = json.loads((tmp_path / "ck" / "ifir_lineage.json").read_text())
    assert lineage["recipe"] == "dual_view" and lineage["loss"] == "DualViewMultipleNegativesRankingLoss"
    assert "ifir-pipeline lineage" in (tmp_path / "ck" / "README.md").read_text()
    model = SentenceTransformer(str(tmp_path / "ck"))
    assert model.max_seq_length == 256  # the evaluation length of the base model, not the training truncation
    assert not list(tmp_path.glob(".ck.trainer"))


def test_labels_carry_document_ids_shared_by_equal_texts():
    pairs = _pairs(4).with_columns(
        pl.Series("positive_text", ["alpha", "alpha", "gamma", "delta"]),  # two queries share one positive
        pl.Series("negative_text", ["beta", "gamma", "alpha", "beta"]),  # negatives that are other positives
    )
    rows = recipe_rows(pairs, "instruction_only", budget=4, seed=0)
    assert rows["label"].to_list() == [[0, 0, 3], [1, 0, 1], [2, 1, 0], [3, 2, 3]]


def test_a_one_step_budget_changes_the_weights(tmp_path):
    from ifir_pipeline.encoders import load_encoder

    rows = recipe_rows(_pairs(8), "instruction_only", budget=8, seed=0)
    info = train_recipe(rows, tmp_path / "ck", TrainConfig(batch_size=8, max_seq_length=24), seed=0, lineage={})
    assert info["steps"] == 1
    base = next(load_encoder("packaged").parameters()).detach()
    trained = next(load_encoder(str(tmp_path / "ck")).parameters()).detach()
    assert not bool((base == trained).all())  # the first (and only) step did not run at learning rate 0
