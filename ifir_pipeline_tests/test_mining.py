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
    assert fused[0][:2].tolist() == [1, 3]


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
        _examples(inst_negs=["s/3", "s/1"]), _docs(texts), q, d, {}, MiningConfig(k=3, rank_min=1, use_bm25=False)
    )
    assert out["negative_id"].to_list() == ["s/3", "s/1", "s/2"]  # the source's order, then the mined one
    assert out["rank"].to_list()[:2] == [0, 0] and out["negative_source"][0] == "instruction_negative"


def test_bad_mining_input():
    with pytest.raises(ValueError, match=r"k must be >= 1, got 0.*rank_min \(60\) is above rank_max \(50\)"):
        MiningConfig(k=0, rank_min=60, rank_max=50)
    with pytest.raises(ValueError, match="at least one of use_bm25 and use_dense"):
        MiningConfig(use_bm25=False, use_dense=False)
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


def _reference_mine(examples, documents, q, d, known, cfg, fused, bm25_idx, dense_idx):
    """The guard semantics written as a plain loop over each example's fused list, to check the array version."""
    from ifir_pipeline.hashing import text_hash

    ids = documents["doc_id"].to_list()
    index = {x: i for i, x in enumerate(ids)}
    hashes = [text_hash(t) for t in documents["text"]]
    rows, counts = [], {}
    for i, ex in enumerate(examples.iter_rows(named=True)):
        p = index.get(ex["positive_id"])
        if p is None:
            continue
        taken = []
        for neg in dict.fromkeys(ex["instruction_negative_ids"]):
            if neg in index and len(taken) < cfg.k:
                taken.append((neg, 0))
        positives = known.get(ex["query_id"], set()) | {ex["positive_id"]}
        for r, j in enumerate(x for x in fused[i] if x >= 0):
            if len(taken) >= cfg.k:
                break
            cand, reason = ids[j], None
            if cand in {t for t, _ in taken}:
                continue
            if cand in positives:
                reason = "known_positive"
            elif not cfg.rank_min <= r + 1 <= cfg.rank_max:
                reason = "outside_window"
            elif hashes[j] == hashes[p]:
                reason = "near_duplicate_hash"
            elif float(d[j] @ d[p]) >= cfg.near_duplicate_cosine:
                reason = "near_duplicate_cosine"
            elif float(q[i] @ d[p]) > 0 and float(q[i] @ d[j]) > cfg.max_score_ratio * float(q[i] @ d[p]):
                reason = "score_margin"
            if reason:
                counts[reason] = counts.get(reason, 0) + 1
            else:
                taken.append((cand, r + 1))
        rows += [(ex["example_id"], neg, rank) for neg, rank in taken]
    return rows, counts


def test_array_guards_match_a_plain_loop_on_random_data():
    from ifir_pipeline.mining import bm25_topk

    rng = np.random.default_rng(7)
    words = [f"w{i}" for i in range(40)]
    texts = [" ".join(rng.choice(words, size=6)) for _ in range(120)]
    texts[5] = texts[9]  # a duplicate text, so the hash guard has work
    texts[11] = texts[12] + " w0"  # and a near-duplicate one, for the cosine guard
    d = _unit(rng.normal(size=(120, 8)))
    d[9] = d[5]
    d[11] = _unit([d[12] + 0.01 * rng.normal(size=8)])[0]  # a near-duplicate vector
    n = 30
    positives = rng.integers(0, 120, size=n)
    positives[0], positives[1] = 5, 12
    q = _unit(d[positives] + 0.6 * rng.normal(size=(n, 8)))
    q[1] = _unit([d[12] + 0.05 * rng.normal(size=8)])[0]  # close to its positive, so the near-duplicate ranks high
    examples = pl.DataFrame(
        {
            "example_id": [f"e{i}" for i in range(n)],
            "query_id": [f"q{i % 20}" for i in range(n)],  # some queries have two positives
            "query": [" ".join(texts[p].split()[:3]) for p in positives],
            "positive_id": [f"s/{p}" for p in positives],
            "instruction_negative_ids": [[f"s/{(p + 1) % 120}"] if i % 4 == 0 else [] for i, p in enumerate(positives)],
        },
        schema_overrides={"instruction_negative_ids": pl.List(pl.Utf8)},
    )
    known = {}
    for qid, pos in examples.select("query_id", "positive_id").iter_rows():
        known.setdefault(qid, set()).add(pos)
    cfg = MiningConfig(k=3, candidates=25, rank_min=1, rank_max=8, max_score_ratio=0.9, near_duplicate_cosine=0.97)
    out, counts = mine_negatives(examples, _docs(texts), q, d, known, cfg)
    dense_idx, _ = dense_topk(q, d, 25)
    bm25_idx = bm25_topk(examples["query"].to_list(), texts, 25)
    fused = rrf_fuse([dense_idx, bm25_idx], cfg.rrf_k)
    rows, ref_counts = _reference_mine(examples, _docs(texts), q, d, known, cfg, fused, bm25_idx, dense_idx)
    assert list(zip(out["example_id"], out["negative_id"], out["rank"], strict=True)) == rows
    got = {k: v for k, v in counts.as_dict().items() if v and not k.startswith("skipped_")}
    assert got == ref_counts and sum(ref_counts.values()) > 0
    assert set(ref_counts) == {
        "known_positive",
        "outside_window",
        "near_duplicate_hash",
        "near_duplicate_cosine",
        "score_margin",
    }


def test_embedding_cache_encodes_only_changed_text_and_survives_a_corrupt_file(tmp_path, encoder):
    from ifir_pipeline.encoders import EmbeddingCache, model_key

    first = EmbeddingCache(tmp_path).encode(encoder, ["one", "two", "three"], ["h1", "h2", "h3"])
    edited = EmbeddingCache(tmp_path)
    vecs = edited.encode(encoder, ["one", "two, edited", "three", "four"], ["h1", "h2b", "h3", "h4"])
    assert (edited.misses, edited.hits) == (2, 2)
    assert np.allclose(vecs[[0, 2]], first[[0, 2]])
    assert np.allclose(vecs[1], encoder.encode(["two, edited"], normalize_embeddings=True)[0], atol=1e-5)
    path = tmp_path / f"{model_key(encoder)}.npy"
    assert len(np.load(path)) == 5  # h1 h2 h3 h2b h4, one file, written whole
    in_order = EmbeddingCache(tmp_path).encode(encoder, ["one", "two", "three"], ["h1", "h2", "h3"])
    assert not in_order.flags.owndata and np.allclose(in_order, first)  # a view of the mapped file, not a copy
    in_order[:] = 0  # copy-on-write: the caller may scribble, the file keeps its vectors
    assert np.allclose(EmbeddingCache(tmp_path).encode(encoder, ["one"], ["h1"]), first[0])
    path.write_bytes(b"not an array")
    warnings = []
    rebuilt = EmbeddingCache(tmp_path, log=warnings.append)
    again = rebuilt.encode(encoder, ["one"], ["h1"])
    assert rebuilt.misses == 1 and "unreadable" in warnings[0] and str(path) in warnings[0]
    assert np.allclose(again[0], first[0], atol=1e-5)
