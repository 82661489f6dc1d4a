from collections import Counter

import polars as pl

from ifir_pipeline.synthesis.base import InversionRequest
from ifir_pipeline.synthesis.cache import ResponseCache
from ifir_pipeline.synthesis.offline import OfflineBackend
from ifir_pipeline.synthesis.runner import synthesize
from ifir_pipeline.text_aspects import PhraseStats
from ifir_pipeline.verification import VerifyConfig, instruction_score, verify_pair

DOCS = [
    "Heat conduction in composite slabs with periodic surface temperature was solved analytically.",
    "Heat conduction in a homogeneous slab under steady heating, measured in wind tunnel experiments.",
    "Boundary layer transition on swept wings at supersonic speed.",
    "Periodic heating of layered walls: an analytic solution for composite slabs.",
    "Steady heating experiments in wind tunnel models of a homogeneous body.",
]


def _backend():
    return OfflineBackend(PhraseStats.fit(DOCS))


def test_offline_writer_reverses_polarity_and_the_verifier_agrees():
    req = InversionRequest("p1", "heat conduction in slabs", None, DOCS[0], DOCS[1])
    res = _backend().invert([req])[0]
    assert res.status == "ok" and res.og_generated
    assert res.instruction_og != res.instruction_reversed
    # under I the positive wins, under I' the negative wins, by a scorer that never saw the writer's aspects
    assert (
        verify_pair(req.query, res.instruction_og, res.instruction_reversed, DOCS[0], DOCS[1], VerifyConfig()) is None
    )
    assert res == _backend().invert([req])[0]  # deterministic


def test_styles_vary_and_exclusions_name_the_losing_documents_phrase():
    reqs = [
        InversionRequest(f"p{i}", "heat conduction", None, DOCS[i % 2], DOCS[1 - i % 2] + f" case {i}")
        for i in range(60)
    ]
    results = _backend().invert(reqs)
    styles = Counter(r.style for r in results if r.status == "ok")
    assert {"requirement", "exclusion", "both"} <= set(styles)
    assert len({r.instruction_reversed.split(" ")[0] for r in results if r.status == "ok"}) >= 4  # varied phrasings


def test_verifier_reads_negation():
    inst = "Documents about wind tunnel experiments are not relevant."
    assert instruction_score(inst, DOCS[1]) < instruction_score(inst, DOCS[0])
    assert (
        verify_pair(
            "q", "Only periodic heating counts.", "Only periodic heating counts!", DOCS[0], DOCS[1], VerifyConfig()
        )
        == "identical_instructions"
    )


def test_runner_caches_and_keeps_failed_rows(tmp_path):
    inputs = pl.DataFrame(
        {
            "pair_id": ["a#0", "b#0"],
            "example_id": ["a", "b"],
            "pair_rank": [0, 1],
            "source": ["s", "s"],
            "query": ["heat conduction", "same docs"],
            "instruction": [None, None],
            "positive_id": ["d0", "d0"],
            "negative_id": ["d1", "d0"],
            "positive_text": [DOCS[0], DOCS[0]],
            "negative_text": [DOCS[1], DOCS[0]],
        },
        schema_overrides={"instruction": pl.Utf8, "pair_rank": pl.UInt32},
    )
    cache = ResponseCache(tmp_path / "c.sqlite")
    frame, stats = synthesize(inputs, _backend(), cache, log=lambda m: None)
    assert stats["ok"] == 1 and stats["failures_by_reason"] == {"no_distinguishing_aspect": 1}
    assert frame.filter(pl.col("status") != "ok")["failure_reason"].to_list() == ["no_distinguishing_aspect"]
    frame2, stats2 = synthesize(inputs, _backend(), ResponseCache(tmp_path / "c.sqlite"), log=lambda m: None)
    assert (
        stats2["cache_hit_rate"] == 1.0
        and frame2["instruction_reversed"].to_list() == frame["instruction_reversed"].to_list()
    )
