"""Recorded writer answers: matching by ids checked by hashes, fallback, not-achievable rows, record and replay."""

import gzip
import json

import polars as pl
import pytest

from ifir_pipeline.errors import DataFormatError
from ifir_pipeline.synthesis.anthropic_backend import AnthropicBackend
from ifir_pipeline.synthesis.base import InversionRequest, InversionResult
from ifir_pipeline.synthesis.cache import ResponseCache
from ifir_pipeline.synthesis.recorded_backend import RecordedBackend
from ifir_pipeline.synthesis.recording import (
    export_recording,
    make_answer,
    prefix_matches,
    prefix_signature,
    read_recording,
    write_recording,
)
from ifir_pipeline.synthesis.runner import synthesize
from ifir_pipeline.testing.messages_api_server import MessagesAPIServer

FULL = "Hemoglobin level. The total hemoglobin test measures the amount of hemoglobin in your blood, in g/dL. " * 3


class Fallback:
    name = "offline"
    model = "fake-offline"

    def __init__(self):
        self.seen = []

    def invert(self, requests):
        self.seen += [r.pair_id for r in requests]
        return [
            InversionResult(r.pair_id, "I fallback", "I' fallback", status="ok", swap_achievable=True) for r in requests
        ]


def _answer(**kw):
    base = dict(
        id="r1",
        source="scifact",
        example_id="e1",
        positive_id="d1",
        negative_id="d2",
        query="what is hemoglobin",
        positive=FULL[:90] + " ...",
        negative="Glycated hemoglobin (HbA1c) shows average blood sugar.",
        swap_achievable=True,
        instruction="I recorded",
        instruction_reversed="I' recorded",
        style="requirement",
        model="claude",
    )
    base.update(kw)
    return make_answer(**base)


def _req(pair_id="e1#0", example_id="e1", negative_id="d2", query="what is hemoglobin", positive=FULL, negative=None):
    return InversionRequest(
        pair_id,
        query,
        None,
        positive,
        negative or "Glycated hemoglobin (HbA1c) shows average blood sugar.",
        example_id=example_id,
        negative_id=negative_id,
    )


def test_a_cut_document_matches_its_full_text_and_a_changed_one_does_not():
    digest, chars = prefix_signature(FULL[:90] + " ...")
    assert prefix_matches(FULL, digest, chars)
    assert prefix_matches(FULL.replace("in g/dL", "in g / dL"), digest, chars)  # punctuation and spacing only
    assert not prefix_matches(FULL.replace("total", "overall"), digest, chars)


def test_recorded_backend_matches_by_ids_checks_texts_and_falls_back(tmp_path):
    path = write_recording(
        tmp_path / "rec.jsonl.gz",
        [
            _answer(),
            _answer(
                id="r2",
                negative_id="d3",
                negative="Anemia is common in winter.",
                swap_achievable=False,
                instruction_reversed="",
                rationale="DOC_B does not address the query",
            ),
            _answer(
                id="r3",
                example_id=None,
                positive_id=None,
                negative_id=None,
                query="who invented the test",
                instruction="I by text",
            ),
        ],
    )
    fallback = Fallback()
    backend = RecordedBackend(path, fallback)
    out = backend.invert(
        [
            _req(),  # ids and texts agree
            _req("e1#1", negative_id="d3", negative="Anemia is common in winter."),  # recorded: not achievable
            _req("e1#2", negative="Glycated hemoglobin (HbA1c) shows median blood sugar."),  # edited since
            _req("x#0", example_id="x", negative_id="zz", query="who invented the test"),  # no ids: by text
            _req("e9#0", example_id="e9", negative_id="d9", query="something else"),  # no recording
        ]
    )
    assert [(r.writer, r.status, r.instruction_og) for r in out] == [
        ("recorded", "ok", "I recorded"),
        ("recorded", "failed", "I recorded"),
        ("offline", "ok", "I fallback"),
        ("recorded", "ok", "I by text"),
        ("offline", "ok", "I fallback"),
    ]
    assert out[1].failure_reason == "not_achievable" and "does not address" in out[1].rationale
    assert fallback.seen == ["e1#2", "e9#0"]
    assert backend.lookups == {"ids": 2, "ids_text_mismatch": 1, "text": 1, "none": 1}


def test_bad_recordings_name_the_file_line_and_field(tmp_path):
    p = tmp_path / "r.jsonl"
    good = json.dumps({**_answer().__dict__})
    p.write_text(good + "\n" + json.dumps({**_answer(id="r2").__dict__, "swap_achievable": "yes"}) + "\n")
    with pytest.raises(DataFormatError, match=r"r\.jsonl, line 2, field 'swap_achievable'"):
        read_recording(p)
    p.write_text(good + "\n" + json.dumps({**_answer(id="r2").__dict__, "query_hash": "0" * 24}) + "\n")
    with pytest.raises(DataFormatError, match="line 2, field 'query_hash': does not match"):
        read_recording(p)
    p.write_text(good + "\n" + good + "\n")
    with pytest.raises(DataFormatError, match="line 2, field 'id': duplicate"):
        read_recording(p)
    gz = tmp_path / "r.jsonl.gz"
    many = "".join(json.dumps({**_answer(id=f"r{i}").__dict__}) + "\n" for i in range(50))
    gz.write_bytes(gzip.compress(many.encode())[:-30])  # a truncated download
    with pytest.raises(DataFormatError, match="r.jsonl.gz: unreadable recording"):
        read_recording(gz)


def _inputs(n):
    return pl.DataFrame(
        [
            {
                "pair_id": f"e{i}#0",
                "example_id": f"e{i}",
                "pair_rank": i,
                "source": "t",
                "query": f"effects of topic {i}",
                "instruction": None,
                "positive_id": f"d{i}a",
                "negative_id": f"d{i}b",
                "positive_text": f"Study {i} measures glacier melt across regions.",
                "negative_text": f"Report {i} surveys coral bleaching in coastal areas.",
                "swap_achievable": i != 3,
                "achievability_reason": None if i != 3 else "negative_off_topic",
                "swap_probability": 0.9 if i != 3 else 0.1,
            }
            for i in range(n)
        ],
        schema_overrides={"instruction": pl.Utf8, "pair_rank": pl.UInt32, "swap_probability": pl.Float32},
    )


def test_record_once_with_a_key_then_replay_without_one(tmp_path):
    inputs = _inputs(6)
    with MessagesAPIServer() as server:
        live = AnthropicBackend(api_key="sk-ant-test", base_url=server.base_url, cache=ResponseCache(None))
        frame, stats = synthesize(inputs, live, ResponseCache(None), log=lambda m: None)
        assert server.count() == 5  # the pair that cannot swap was never sent
    assert stats["skipped_not_achievable"] == 1 and stats["calls_not_sent"] == 1 and stats["usd_not_spent_estimate"] > 0
    skipped = frame.filter(pl.col("pair_id") == "e3#0").row(0, named=True)
    assert skipped["status"] == "skipped" and skipped["achievability_reason"] == "negative_off_topic"
    path = export_recording(frame, inputs, tmp_path / "team.jsonl.gz")
    assert len(read_recording(path)) == 5
    # replay: no server, no key; the same answers come back, written by "recorded"
    fallback = Fallback()
    replay, rstats = synthesize(inputs, RecordedBackend(path, fallback), ResponseCache(None), log=lambda m: None)
    assert fallback.seen == [] and rstats["rows_by_writer"] == {"recorded": 5, "skipped": 1}
    ok = frame["status"] == "ok"
    assert replay.filter(ok)["instruction_reversed"].to_list() == frame.filter(ok)["instruction_reversed"].to_list()


def test_the_gate_rejects_pairs_that_cannot_swap_and_measures_the_writer_on_the_rest():
    from ifir_pipeline.verification import VerifyConfig, verify_frame

    rows = pl.DataFrame(
        {
            "pair_id": ["a", "b", "c"],
            "query": ["q1", "q2", "q3"],
            "instruction_og": ["Relevant documents discuss glacier melt.", None, "I recorded"],
            "instruction_reversed": ["Relevant documents discuss coral bleaching.", None, ""],
            "positive_id": ["p", "p", "p"],
            "negative_id": ["n", "n", "n"],
            "status": ["ok", "skipped", "failed"],
            "failure_reason": [None, "swap_not_achievable", "not_achievable"],
            "writer": ["offline", "skipped", "recorded"],
        }
    )
    texts = {"p": "A study of glacier melt in the Alps.", "n": "A survey of coral bleaching on reefs."}
    verdicts = verify_frame(rows, texts, VerifyConfig())
    assert verdicts["rejection_reason"].to_list() == [None, "swap_not_achievable", "swap_not_achievable"]
    assert verdicts["verified_by"].to_list() == ["offline-lexical", None, None]
