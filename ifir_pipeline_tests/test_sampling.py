import polars as pl

from ifir_pipeline.hashing import text_hash
from ifir_pipeline.sampling import EvalFingerprint, apply_leakage_guard, budget_prefix, nested_sample_order


def _pool(n_a: int, n_b: int) -> pl.DataFrame:
    rows = [("a", f"a{i}") for i in range(n_a)] + [("b", f"b{i}") for i in range(n_b)]
    return pl.DataFrame({"source": [r[0] for r in rows], "example_id": [r[1] for r in rows]})


def test_budget_samples_are_nested_stratified_and_seeded():
    pool = nested_sample_order(_pool(300, 100), seed=7)
    small, big = budget_prefix(pool, 40), budget_prefix(pool, 200)
    assert set(small["example_id"]) <= set(big["example_id"])
    share = (small["source"] == "a").mean()
    assert abs(share - 0.75) <= 1 / 40 + 1e-9  # each prefix holds each source's share, to within one example
    assert pool["example_id"].to_list() == nested_sample_order(_pool(300, 100), seed=7)["example_id"].to_list()
    assert pool["example_id"].to_list() != nested_sample_order(_pool(300, 100), seed=8)["example_id"].to_list()


def test_leakage_guard_removes_eval_queries_documents_and_their_examples():
    docs = pl.DataFrame(
        {
            "doc_id": ["s/1", "s/2", "s/3"],
            "source": ["s"] * 3,
            "title": ["", "", ""],
            "text": ["Eval doc!", "train doc", "other"],
        }
    )
    ex = pl.DataFrame(
        {
            "example_id": ["e1", "e2", "e3", "e4"],
            "source": ["s"] * 4,
            "query_id": ["1", "2", "3", "4"],
            "query": ["An eval query", "fine query", "uses eval doc", "fine query"],
            "instruction": [None, None, None, None],
            "positive_id": ["s/2", "s/2", "s/1", "s/2"],
            "instruction_negative_ids": [["s/1"], [], [], []],
        },
        schema_overrides={"instruction": pl.Utf8},
    )
    fp = EvalFingerprint(frozenset({text_hash("an EVAL query.")}), frozenset({text_hash("eval doc")}))
    kept, kept_docs, report = apply_leakage_guard(ex, docs, fp)
    assert kept["example_id"].to_list() == ["e2"]
    assert "s/1" not in kept_docs["doc_id"].to_list()
    assert (
        report.leaked_queries,
        report.leaked_documents,
        report.examples_dropped_for_documents,
        report.duplicate_examples,
    ) == (1, 1, 1, 1)
