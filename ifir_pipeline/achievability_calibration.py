"""Calibrating the achievability check on recorded LLM verdicts, honestly.

Labels: the ``swap_achievable`` verdicts of a recording (the bundled one by default). Two readings are in it:
the ``reference`` annotator's (534 pairs of the earlier default pool and SQuAD, the reading the check follows
and is scored on) and eight SciFact annotators' (1,377 pairs, lenient to strict, weighted ``other_weight``).

Honest figures come from grouped, repeated k-fold cross-validation: the folds split by query (all negatives
of one query are in the same fold), the logistic model *and its threshold* are fitted on the training folds
only (the threshold maximizes weighted balanced accuracy there), and the held-out fold is scored. Reported:
balanced accuracy, precision and recall on the reference rows (overall and per source), agreement per
annotator, mean and standard deviation over repeats. The shipped model is then fitted once on all rows.

sklearn's LogisticRegression is used for fitting; scoring needs only numpy (see
:class:`~ifir_pipeline.achievability.AchievabilityModel`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ifir_pipeline.achievability import (
    ACHIEVABILITY_VERSION,
    FEATURES,
    AchievabilityModel,
    TermWeights,
    same_text,
)

REFERENCE_ANNOTATOR = "reference"
THRESHOLDS = np.round(np.linspace(0.05, 0.95, 91), 3)


@dataclass(frozen=True)
class LabelledTriples:
    queries: list[str]
    positives: list[str]
    negatives: list[str]
    labels: np.ndarray  # bool
    sources: np.ndarray
    annotators: np.ndarray
    groups: np.ndarray  # the query's identity: folds never split one query's negatives

    @classmethod
    def from_recording(cls, rows) -> LabelledTriples:
        return cls(
            queries=[r.query for r in rows],
            positives=[r.positive for r in rows],
            negatives=[r.negative for r in rows],
            labels=np.array([r.swap_achievable for r in rows], dtype=bool),
            sources=np.array([r.source for r in rows], dtype=object),
            annotators=np.array([r.annotator or REFERENCE_ANNOTATOR for r in rows], dtype=object),
            groups=np.array([r.example_id or r.query_hash for r in rows], dtype=object),
        )

    def subset(self, idx: np.ndarray) -> LabelledTriples:
        pick = lambda xs: [xs[i] for i in idx]  # noqa: E731
        return LabelledTriples(
            pick(self.queries),
            pick(self.positives),
            pick(self.negatives),
            self.labels[idx],
            self.sources[idx],
            self.annotators[idx],
            self.groups[idx],
        )


def features(data: LabelledTriples, embed: Callable[[list[str]], np.ndarray], weights: TermWeights) -> np.ndarray:
    """The check's feature matrix for labelled triples (the same computation as at run time)."""
    probe = AchievabilityModel(ACHIEVABILITY_VERSION, "", 0, FEATURES, (0,) * 5, (1,) * 5, (0,) * 5, 0.0, 0.5, weights)
    q, p, n = (np.asarray(embed(x), dtype=np.float64) for x in (data.queries, data.positives, data.negatives))
    qn, qp, pn = (q * n).sum(1), (q * p).sum(1), (p * n).sum(1)
    return probe.feature_matrix(
        qn, qp, pn, probe.coverages(data.queries, data.negatives), probe.coverages(data.queries, data.positives)
    )


def _fit(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """(mean, scale, coef, intercept, threshold) on one training set."""
    from sklearn.linear_model import LogisticRegression

    mean, scale = x.mean(0), x.std(0) + 1e-9
    z = (x - mean) / scale
    clf = LogisticRegression(max_iter=2000).fit(z, y, sample_weight=w)
    prob = clf.predict_proba(z)[:, 1]
    threshold = float(max(THRESHOLDS, key=lambda t: _balanced_accuracy(y, prob >= t, w)))
    return mean, scale, clf.coef_[0], float(clf.intercept_[0]), threshold


def _predict(params, x: np.ndarray) -> np.ndarray:
    mean, scale, coef, intercept, threshold = params
    prob = 1.0 / (1.0 + np.exp(-(((x - mean) / scale) @ coef + intercept)))
    return prob >= threshold


def _balanced_accuracy(y: np.ndarray, pred: np.ndarray, w: np.ndarray | None = None) -> float:
    w = np.ones(len(y)) if w is None else w
    pos, neg = y.astype(bool), ~y.astype(bool)
    tpr = (w[pos & pred].sum() / w[pos].sum()) if pos.any() else 0.0
    tnr = (w[neg & ~pred].sum() / w[neg].sum()) if neg.any() else 0.0
    return float((tpr + tnr) / 2)


def scores(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    tp = int((y & pred).sum())
    return {
        "n": int(len(y)),
        "base_rate": round(float(y.mean()) if len(y) else 0.0, 4),
        "balanced_accuracy": round(_balanced_accuracy(y, pred), 4),
        "precision": round(tp / max(int(pred.sum()), 1), 4),
        "recall": round(tp / max(int(y.sum()), 1), 4),
    }


def sample_weights(data: LabelledTriples, other_weight: float) -> np.ndarray:
    return np.where(data.annotators == REFERENCE_ANNOTATOR, 1.0, other_weight)


def cross_validate(
    x: np.ndarray, data: LabelledTriples, other_weight: float = 0.5, folds: int = 5, repeats: int = 10, seed: int = 0
) -> dict[str, Any]:
    """Grouped, repeated k-fold CV; model and threshold fitted on training folds only."""
    y, w = data.labels, sample_weights(data, other_weight)
    ref = data.annotators == REFERENCE_ANNOTATOR
    runs: list[dict[str, Any]] = []
    groups = np.unique(data.groups)
    for rep in range(repeats):
        rng = np.random.default_rng([seed, rep])
        fold_of = dict(zip(groups.tolist(), (rng.permutation(len(groups)) % folds).tolist(), strict=True))
        fold = np.array([fold_of[g] for g in data.groups])
        pred = np.zeros(len(y), dtype=bool)
        for k in range(folds):
            tr, te = fold != k, fold == k
            if not te.any():
                continue
            pred[te] = _predict(_fit(x[tr], y[tr], w[tr]), x[te])
        run: dict[str, Any] = {"reference": scores(y[ref], pred[ref])}
        for s in sorted(set(data.sources[ref].tolist())):
            m = ref & (data.sources == s)
            run[f"reference/{s}"] = scores(y[m], pred[m])
        for a in sorted(set(data.annotators.tolist()) - {REFERENCE_ANNOTATOR}):
            m = data.annotators == a
            run[f"annotator/{a}"] = {
                **scores(y[m], pred[m]),
                "agreement": round(float((pred[m] == y[m]).mean()), 4),
                "predicted_share": round(float(pred[m].mean()), 4),
            }
        runs.append(run)
    out: dict[str, Any] = {"folds": folds, "repeats": repeats, "other_weight": other_weight}
    for key in runs[0]:
        agg: dict[str, Any] = {}
        for metric, v0 in runs[0][key].items():
            vals = np.array([r[key][metric] for r in runs], dtype=float)
            agg[metric] = v0 if metric in ("n", "base_rate") else round(float(vals.mean()), 4)
            if metric in ("balanced_accuracy", "precision", "recall"):
                agg[metric + "_sd"] = round(float(vals.std()), 4)
        out[key] = agg
    return out


def best_single_cosine(x: np.ndarray, data: LabelledTriples) -> dict[str, float]:
    """The baseline the issue names: one threshold on cos(query, negative), chosen on the reference rows
    themselves (in-sample, so optimistic)."""
    ref = data.annotators == REFERENCE_ANNOTATOR
    y, c = data.labels[ref], x[ref, 0]
    best = max(np.linspace(0, 1, 201), key=lambda t: _balanced_accuracy(y, c >= t))
    return {"threshold": round(float(best), 3), **scores(y, c >= best)}


def calibrate(
    data: LabelledTriples,
    embed: Callable[[list[str]], np.ndarray],
    background_texts: Sequence[str],
    encoder_name: str,
    max_seq_length: int,
    other_weight: float = 0.5,
    folds: int = 5,
    repeats: int = 10,
) -> tuple[AchievabilityModel, dict[str, Any]]:
    """Cross-validated figures, then the model fitted on every row."""
    weights = TermWeights.fit(background_texts)
    x = features(data, embed, weights)
    dup = same_text(data.positives, data.negatives)
    report = {
        "cross_validated": cross_validate(x, data, other_weight, folds, repeats),
        "best_single_cosine_in_sample": best_single_cosine(x, data),
        "rows": int(len(data.labels)),
        "exact_duplicates": int(dup.sum()),
        "background_documents": weights.n_docs,
    }
    mean, scale, coef, intercept, threshold = _fit(x, data.labels, sample_weights(data, other_weight))
    model = AchievabilityModel(
        version=ACHIEVABILITY_VERSION,
        encoder=encoder_name,
        max_seq_length=max_seq_length,
        features=FEATURES,
        mean=tuple(float(v) for v in mean),
        scale=tuple(float(v) for v in scale),
        coef=tuple(float(v) for v in coef),
        intercept=intercept,
        threshold=threshold,
        weights=weights,
        calibration=report,
    )
    return model, report


def bundled_background_texts() -> list[str]:
    """Document texts of every bundled training corpus: the fixed IDF background of the shipped check."""
    from ifir_pipeline.loaders import default_training_specs, load_training_source

    texts: list[str] = []
    for spec in default_training_specs():
        docs = load_training_source(spec).documents
        texts += [f"{t} {x}".strip() for t, x in zip(docs["title"], docs["text"], strict=True)]
    return texts
