"""The achievability check: the shipped calibration, honest cross-validation, decisions and reasons."""

import json
import subprocess
import sys

import numpy as np
import polars as pl
import pytest

from ifir_pipeline.achievability import (
    FEATURES,
    AchievabilityConfig,
    AchievabilityModel,
    CandidateScorer,
    TermWeights,
    score_triples,
)
from ifir_pipeline.achievability_calibration import LabelledTriples, cross_validate
from ifir_pipeline.synthesis.recording import RecordingIndex, bundled_recording_path, make_answer, read_recording

HEMOGLOBIN = "what is hemoglobin levels"
POSITIVE = (
    "Hemoglobin level: the total hemoglobin test measures the amount of hemoglobin in your blood in grams per "
    "deciliter (g/dL). Low values indicate anemia; high values can point to dehydration or lung disease."
)
ON_TOPIC = (
    "The hemoglobin A1c test (glycated hemoglobin) measures how much glucose is bound to hemoglobin and shows "
    "average blood sugar levels over the past two to three months."
)
OFF_TOPIC = (
    "What does extravert mean in Urban Dictionary? An extravert is somebody who does not get shy with strangers."
)


@pytest.fixture(scope="module")
def model():
    return AchievabilityModel.load()


@pytest.fixture(scope="module")
def embed(encoder):
    return lambda texts: encoder.encode(texts, normalize_embeddings=True, convert_to_numpy=True)


def test_shipped_check_is_calibrated_on_the_bundled_recording_and_meets_its_targets(model):
    assert model.features == FEATURES and len(model.coef) == 5 and 0 < model.threshold < 1
    cv = model.calibration["cross_validated"]
    ref = cv["reference"]
    # grouped 5-fold CV repeated 10 times, threshold chosen on training folds: what the issue asks for
    assert cv["folds"] == 5 and cv["repeats"] == 10 and ref["n"] == 534
    assert ref["balanced_accuracy"] >= 0.85 and ref["precision"] >= 0.55
    assert model.calibration["best_single_cosine_in_sample"]["precision"] < ref["precision"]
    assert {"reference/msmarco", "reference/scifact", "reference/squad"} <= set(cv)
    assert sum(k.startswith("annotator/") for k in cv) == 8


def test_decisions_and_reasons(model, embed):
    cfg = AchievabilityConfig()
    out = score_triples([HEMOGLOBIN] * 3, [POSITIVE] * 3, [ON_TOPIC, OFF_TOPIC, POSITIVE + " "], embed, model, cfg)
    assert out["swap_achievable"].tolist() == [True, False, False]
    assert out["achievability_reason"] == [None, "negative_off_topic", "negative_duplicates_positive"]
    assert out["swap_probability"][0] > model.threshold > out["swap_probability"][1]
    # the threshold is the one knob: above every probability nothing passes
    strict = score_triples([HEMOGLOBIN], [POSITIVE], [ON_TOPIC], embed, model, AchievabilityConfig(threshold=0.999))
    assert strict["achievability_reason"] == ["negative_off_topic"]
    with pytest.raises(ValueError, match="threshold"):
        AchievabilityConfig(threshold=1.5)


def test_idf_coverage_weights_rare_query_terms():
    w = TermWeights.fit(["the cell grows", "the cell divides", "a cell dies", "hemoglobin binds oxygen"])
    q = {"cell", "hemogl"}
    assert w.coverage(q, {"hemogl"}) > w.coverage(q, {"cell"}) > 0
    assert w.coverage(set(), {"cell"}) == 0.0


def test_cross_validation_never_splits_a_query_and_fits_thresholds_on_training_folds(monkeypatch):
    import ifir_pipeline.achievability_calibration as cal

    rng = np.random.default_rng(0)
    n = 60
    groups = np.repeat([f"q{i}" for i in range(20)], 3)
    data = LabelledTriples(
        ["q"] * n,
        ["p"] * n,
        ["n"] * n,
        rng.random(n) < 0.4,
        np.array(["s"] * n, dtype=object),
        np.array(["reference"] * n, dtype=object),
        groups,
    )
    x = rng.normal(size=(n, 5))
    seen = []
    real_fit = cal._fit

    def spying_fit(xt, yt, wt):
        seen.append({tuple(r) for r in xt})
        return real_fit(xt, yt, wt)

    monkeypatch.setattr(cal, "_fit", spying_fit)
    out = cross_validate(x, data, folds=4, repeats=2)
    assert len(seen) == 8 and out["reference"]["n"] == n
    for train_rows in seen:
        train_groups = {groups[i] for i in range(n) if tuple(x[i]) in train_rows}
        held_out = {groups[i] for i in range(n) if tuple(x[i]) not in train_rows}
        assert not (train_groups & held_out)  # no query has negatives on both sides


def test_recorded_verdicts_override_the_model_in_mining(model):
    pos, neg_rec, neg_other = "scifact/1", "scifact/2", "scifact/3"
    texts = [POSITIVE, OFF_TOPIC, ON_TOPIC]
    ans = make_answer(
        id="r1",
        source="scifact",
        example_id="e1",
        positive_id=pos,
        negative_id=neg_rec,
        query=HEMOGLOBIN,
        positive=POSITIVE[:80] + " ...",
        negative=OFF_TOPIC,
        swap_achievable=True,
        instruction="I",
        instruction_reversed="I'",
    )
    scorer = CandidateScorer(model, AchievabilityConfig(), RecordingIndex([ans]))
    examples = pl.DataFrame(
        {"example_id": ["e1"], "query": [HEMOGLOBIN], "instruction": [None]}, schema_overrides={"instruction": pl.Utf8}
    )
    scorer.prepare(examples, [pos, neg_rec, neg_other], texts, [POSITIVE])
    assert scorer.recorded_verdict(0, 1) == 1 and scorer.recorded_verdict(0, 2) == 0
    prob = np.array([[0.01, 0.9]])
    passing = scorer.passes(prob, np.array([[1, 0]], dtype=np.int8), np.array([[0.1, 0.1]]))
    assert passing.tolist() == [[True, True]]  # the recorded verdict wins over a low probability
    assert scorer.reason(0.9, -1, 0.1) == "recorded_not_achievable"


def test_bundled_recording_holds_the_labelled_verdicts():
    rows = read_recording(bundled_recording_path())
    assert len(rows) == 1911 and sum(r.swap_achievable for r in rows) == 568
    assert {r.annotator for r in rows} == {"reference", *(f"scifact-{i}" for i in range(8))}
    assert all(r.instruction and r.instruction_reversed for r in rows if r.swap_achievable)


def test_check_pairs_cli_json_and_bad_rows(tmp_path):
    good = tmp_path / "pairs.jsonl"
    rows = [
        {"id": "a", "query": HEMOGLOBIN, "positive": POSITIVE, "negative": ON_TOPIC, "swap_achievable": True},
        {"id": "b", "query": HEMOGLOBIN, "positive": POSITIVE, "negative": OFF_TOPIC, "swap_achievable": False},
    ]
    good.write_text("".join(json.dumps(r) + "\n" for r in rows))
    env_cmd = [sys.executable, "-m", "ifir_pipeline.cli", "check-pairs", str(good), "--json"]
    done = subprocess.run(env_cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(x) for x in done.stdout.strip().splitlines()]
    assert [(x["id"], x["swap_achievable"], x["reason"]) for x in lines[:2]] == [
        ("a", True, None),
        ("b", False, "negative_off_topic"),
    ]
    summary = lines[-1]
    assert summary["summary"] and summary["rows"] == 2 and summary["against_labels"]["balanced_accuracy"] == 1.0
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(rows[0]) + "\n" + json.dumps({"id": "c", "query": "q", "positive": "p"}) + "\n")
    done = subprocess.run([*env_cmd[:4], str(bad), "--json"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert "bad.jsonl, line 2, field 'negative'" in done.stderr and "Traceback" not in done.stderr
