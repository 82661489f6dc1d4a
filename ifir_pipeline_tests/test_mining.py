import numpy as np
import polars as pl
import pytest

from ifir_pipeline.mining import MiningConfig, dense_topk, mine_negatives, rrf_fuse


def _unit(rows):
    m = np.asarray(rows, dtype=np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def test_dense_topk_matches_brute_force_across_chunks():
    rng = np.random.default_rng(0)
    q, d = _unit(rng.normal(size=(37, 16))), _unit(rng.normal(size=(101, 16)))
    idx, val = dense_topk(q, d, k=5, chunk=8)
    brute = np.argsort(-(q @ d.T), axis=1)[:, :5]
    assert (idx == brute).all()
    assert np.allclose(val, np.take_along_axis(q @ d.T, brute, axis=1), atol=1e-6)


def test_rrf_fuses_ranked_lists():
    fused = rrf_fuse([np.array([[1, 2, 3]]), np.array([[3, 1, 4]])], rrf_k=60)
    assert fused[0][:2] == [1, 3]


def _docs(texts):
    return pl.DataFrame(
        {
            "doc_id": [f"s/{i}" for i in range(len(texts))],
            "source": ["s"] * len(texts),
            "title": [""] * len(texts),
            "text": texts,
        }
    )


def _examples(pos="s/0", inst_negs=()):
    return pl.DataFrame(
        {
            "example_id": ["e"],
            "query_id": ["q"],
            "query": ["alpha beta"],
            "positive_id": [pos],
            "instruction_negative_ids": [list(inst_negs)],
        },
        schema_overrides={"instruction_negative_ids": pl.List(pl.Utf8)},
    )


def test_guards_drop_known_positives_near_duplicates_and_too_close_scores():
    texts = [
        "alpha beta gamma",
        "alpha beta gamma",
        "alpha beta judged relevant",
        "alpha beta close",
        "alpha beta delta",
        "alpha x",
        "beta y",
    ]
    q = _unit([[1, 0, 0]])
    d = _unit(
        [
            [0.9, 0.1, 0],
            [0.9, 0.1, 0.0],
            [0.85, 0.2, 0],
            [0.95, -0.3, 0],
            [0.6, 0.5, 0.1],
            [0.5, 0.1, 0.8],
            [0.3, 0.9, 0.2],
        ]
    )
    cfg = MiningConfig(k=2, rank_min=1, rank_max=10, use_bm25=False, max_score_ratio=0.95)
    out, counts = mine_negatives(_examples(), _docs(texts), q, d, {"q": {"s/0", "s/2"}}, cfg)
    assert counts.known_positive == 2  # the positive itself and the other judged document
    assert counts.near_duplicate_hash == 1  # s/1 has the positive's text
    assert counts.score_margin == 1  # s/3 scores within 5% of the positive: likely a false negative
    assert counts.near_duplicate_cosine == 0
    assert out["negative_id"].to_list() == ["s/4", "s/5"]
    assert out["negative_source"].to_list() == ["mined", "mined"]


def test_instruction_negatives_come_first():
    texts = ["alpha beta", "alpha beta violates the instruction", "alpha other", "beta other"]
    q, d = _unit([[1, 0]]), _unit([[1, 0.1], [0.8, 0.6], [0.7, 0.7], [0.2, 1]])
    out, _ = mine_negatives(
        _examples(inst_negs=["s/1"]), _docs(texts), q, d, {}, MiningConfig(k=2, rank_min=1, use_bm25=False)
    )
    assert (
        out["negative_id"][0] == "s/1" and out["rank"][0] == 0 and out["negative_source"][0] == "instruction_negative"
    )


def test_bad_mining_input():
    q, d = _unit([[1, 0]]), np.zeros((0, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="corpus is empty"):
        mine_negatives(_examples(), _docs([]), q, d, {}, MiningConfig())
    out, counts = mine_negatives(
        _examples(),
        _docs(["alpha", "beta"]),
        q,
        _unit([[1, 0], [0, 1]]),
        {},
        MiningConfig(k=3, rank_min=1, use_bm25=False),
    )
    assert counts.skipped == {"corpus_smaller_than_k": 1} and out.height == 1
    out, counts = mine_negatives(
        _examples(pos="s/9"),
        _docs(["alpha", "beta"]),
        q,
        _unit([[1, 0], [0, 1]]),
        {},
        MiningConfig(k=1, use_bm25=False),
    )
    assert counts.skipped == {"positive_not_in_corpus": 1} and out.height == 0


def test_embedding_cache_reencodes_nothing(tmp_path, encoder):
    from ifir_pipeline.encoders import EmbeddingCache

    texts = ["a first text", "a second text", "a first text"]
    cache = EmbeddingCache(tmp_path)
    first = cache.encode(encoder, texts, ["h1", "h2", "h1"])
    again = EmbeddingCache(tmp_path)
    second = again.encode(encoder, texts, ["h1", "h2", "h1"])
    assert (cache.misses, again.misses, again.hits) == (2, 0, 3)
    assert np.allclose(first, second)
