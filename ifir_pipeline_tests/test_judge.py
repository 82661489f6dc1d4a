"""The LLM label-swap judge through the real SDK against the local Messages API server."""

import polars as pl

from ifir_pipeline.judge import JudgeRequest, LabelSwapJudge
from ifir_pipeline.synthesis.cache import ResponseCache
from ifir_pipeline.testing.messages_api_server import MessagesAPIServer
from ifir_pipeline.verification import VerifyConfig, verify_frame

POS = "A randomized trial of aspirin for stroke prevention in older adults."
NEG = "A cohort study of statin use and heart failure outcomes."


def _frame(rows):
    base = {"status": "ok", "positive_id": "p", "negative_id": "n", "query": "cardiovascular prevention"}
    return pl.DataFrame([{**base, **r} for r in rows])


def test_judge_accepts_swapped_labels_rejects_unswapped_and_caches(tmp_path):
    rows = [
        {
            "pair_id": "good",
            "instruction_og": "Only randomized aspirin trials count.",
            "instruction_reversed": "Only statin cohort studies count.",
        },
        {
            "pair_id": "unswapped",
            "instruction_og": "Only randomized aspirin trials count.",
            "instruction_reversed": "Relevant documents report aspirin trials in older adults.",
        },
        {
            "pair_id": "wrong_way",
            "instruction_og": "Only statin cohort studies count.",
            "instruction_reversed": "Only randomized aspirin trials count.",
        },
    ]
    texts = {"p": POS, "n": NEG}
    with MessagesAPIServer() as server:
        judge = LabelSwapJudge(
            api_key="k", base_url=server.base_url, cache=ResponseCache(tmp_path / "j.sqlite"), max_tokens=300
        )
        verdicts = verify_frame(_frame(rows), texts, VerifyConfig(), judge=judge)
        reasons = verdicts["rejection_reason"].to_list()
        assert reasons == [None, "reversal_not_satisfied", "original_not_satisfied"]
        # the LLM judge's own verdict is kept beside the offline verifier's
        assert verdicts["judge_verdict"].to_list() == ["swapped", "reversal_not_satisfied", "original_not_satisfied"]
        assert set(verdicts["verified_by"]) == {"anthropic-judge"} and verdicts["lexical_verdict"].null_count() == 0
        assert server.count() == 3
        body = server.requests[0]["body"]
        assert (
            "You judge search relevance" in body["system"][0]["text"]
            and body["output_config"]["format"]["schema"]["required"]
        )
        again = LabelSwapJudge(api_key="k", base_url=server.base_url, cache=ResponseCache(tmp_path / "j.sqlite"))
        assert verify_frame(_frame(rows), texts, VerifyConfig(), judge=again)["rejection_reason"].to_list() == reasons
        assert server.count() == 3  # verdicts are cached by content hash


def test_document_order_is_randomized_per_pair():
    firsts = {JudgeRequest(f"p{i}", "q", "a", "b", POS, NEG).positive_first for i in range(40)}
    assert firsts == {True, False}
