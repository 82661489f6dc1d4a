"""Can a pair's labels truly be swapped? One check, used before anything is written.

Polarity reversal needs a hard negative d- that addresses the query, so that an honest complementary
instruction I' can make d- the answer and d+ not. When d- answers another question (an off-topic negative),
every I' is a lie ("I' names a word of d-, so d- wins") and training on it teaches keyword attraction.

The check is a logistic model over five signals the pipeline already has, all computed with the mining
encoder (the packaged MiniLM at 128 tokens) and a fixed background of document frequencies:

- ``cos_query_negative``, ``cos_query_positive``, ``cos_positive_negative``: dense cosines;
- ``idf_coverage_negative``, ``idf_coverage_positive``: the IDF-weighted share of the query's terms that occur
  in the first 900 characters of d- (d+): does d- speak about what the query names?

It is calibrated on LLM verdicts (``swap_achievable`` of the bundled recording, see
:mod:`ifir_pipeline.achievability_calibration` for the grouped cross-validation that reports how well it
does on pairs it was not fitted on). Decisions carry a reason code from :data:`REASONS`.

Example:
    >>> model = AchievabilityModel.load()
    >>> model.version
    'achievability-v1'
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ifir_pipeline.hashing import normalize_text
from ifir_pipeline.text_aspects import STOPWORDS, tokens

ACHIEVABILITY_VERSION = "achievability-v1"
FEATURES = (
    "cos_query_negative",
    "cos_query_positive",
    "cos_positive_negative",
    "idf_coverage_negative",
    "idf_coverage_positive",
)
DOC_WINDOW_CHARS = 900  # what the labelling LLM read of each document, and about what a 128-token encoder reads
STEM_CHARS = 6

REASONS = {
    "negative_off_topic": "the negative does not address the query closely enough for a truthful I' "
    "(calibrated swap probability below the threshold)",
    "negative_duplicates_positive": "the negative is the positive's text, or nearly (cosine at or above "
    "duplicate_cosine)",
    "recorded_not_achievable": "a recorded LLM verdict for this exact triple: no truthful I' exists",
    "llm_not_achievable": "the writing LLM answered swap_achievable = false",
}

VERDICT_SOURCES = ("model", "recorded", "disabled")


@dataclass(frozen=True)
class AchievabilityConfig:
    """How the check decides; ``threshold=None`` takes the calibrated one."""

    enabled: bool = True
    threshold: float | None = None
    duplicate_cosine: float = 0.98
    use_recorded_verdicts: bool = True

    def __post_init__(self) -> None:
        if self.threshold is not None and not 0.0 < self.threshold < 1.0:
            raise ValueError(f"AchievabilityConfig: threshold must be in (0, 1), got {self.threshold}")
        if not 0.0 < self.duplicate_cosine <= 1.0:
            raise ValueError(f"AchievabilityConfig: duplicate_cosine must be in (0, 1], got {self.duplicate_cosine}")


def default_model_path() -> Path:
    return Path(str(resources.files("ifir_pipeline"))) / "data" / "models" / f"{ACHIEVABILITY_VERSION}.json.gz"


def stems(text: str) -> set[str]:
    """Content-word stems (first six letters), stop words dropped: what coverage counts."""
    return {w[:STEM_CHARS] for w in tokens(text) if w not in STOPWORDS and len(w) > 2}


def document_window(text: str) -> str:
    return text[:DOC_WINDOW_CHARS]


@dataclass(frozen=True)
class TermWeights:
    """Inverse document frequencies from a fixed background corpus; unseen terms weigh the most."""

    df: dict[str, int]
    n_docs: int

    def idf(self, stem: str) -> float:
        return math.log((self.n_docs + 1) / (self.df.get(stem, 0) + 1))

    def coverage(self, query_stems: set[str], doc_stems: set[str]) -> float:
        """IDF-weighted share of the query's stems present in the document (0 for an empty query)."""
        total = sum(self.idf(s) for s in query_stems)
        if total <= 0:
            return 0.0
        return sum(self.idf(s) for s in query_stems & doc_stems) / total

    @classmethod
    def fit(cls, texts: Sequence[str]) -> TermWeights:
        df: dict[str, int] = {}
        for t in texts:
            for s in stems(document_window(t)):
                df[s] = df.get(s, 0) + 1
        return cls(df, len(texts))


@dataclass(frozen=True)
class AchievabilityModel:
    """Standardized logistic regression over :data:`FEATURES`; everything needed to score is in the file."""

    version: str
    encoder: str
    max_seq_length: int
    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    threshold: float
    weights: TermWeights
    calibration: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path | None = None) -> AchievabilityModel:
        p = Path(path) if path else default_model_path()
        opener = gzip.open if p.suffix == ".gz" else open
        with opener(p, "rt", encoding="utf-8") as fh:
            d = json.load(fh)
        if tuple(d["features"]) != FEATURES:
            raise ValueError(f"{p}: field 'features': expected {list(FEATURES)}, found {d['features']}")
        return cls(
            version=d["version"],
            encoder=d["encoder"],
            max_seq_length=int(d["max_seq_length"]),
            features=tuple(d["features"]),
            mean=tuple(d["mean"]),
            scale=tuple(d["scale"]),
            coef=tuple(d["coef"]),
            intercept=float(d["intercept"]),
            threshold=float(d["threshold"]),
            weights=TermWeights(d["df"], int(d["n_docs"])),
            calibration=d.get("calibration", {}),
        )

    def save(self, path: str | Path) -> Path:
        from ifir_pipeline.storage import atomic_write_bytes

        d = {
            "version": self.version,
            "encoder": self.encoder,
            "max_seq_length": self.max_seq_length,
            "features": list(self.features),
            "mean": list(self.mean),
            "scale": list(self.scale),
            "coef": list(self.coef),
            "intercept": self.intercept,
            "threshold": self.threshold,
            "calibration": self.calibration,
            "n_docs": self.weights.n_docs,
            "df": dict(sorted(self.weights.df.items())),
        }
        blob = json.dumps(d, ensure_ascii=False, sort_keys=False).encode("utf-8")
        return atomic_write_bytes(path, gzip.compress(blob, mtime=0))

    def summary(self) -> dict[str, Any]:
        """What the UI shows about the check's definition."""
        return {
            "version": self.version,
            "encoder": f"{self.encoder} (max_seq_length {self.max_seq_length})",
            "features": list(self.features),
            "coef": [round(c, 4) for c in self.coef],
            "calibrated_threshold": round(self.threshold, 4),
            "cross_validated": self.calibration.get("cross_validated", {}),
        }

    # -- scoring ------------------------------------------------------------------------------------------
    def coverages(self, queries: Sequence[str], documents: Sequence[str]) -> np.ndarray:
        """Row-wise IDF coverage of ``queries[i]`` in ``documents[i]`` (document window only)."""
        q_cache: dict[str, set[str]] = {}
        d_cache: dict[str, set[str]] = {}
        out = np.empty(len(queries), dtype=np.float64)
        for i, (q, d) in enumerate(zip(queries, documents, strict=True)):
            qs = q_cache.get(q)
            if qs is None:
                qs = q_cache[q] = stems(q)
            ds = d_cache.get(d)
            if ds is None:
                ds = d_cache[d] = stems(document_window(d))
            out[i] = self.weights.coverage(qs, ds)
        return out

    def feature_matrix(
        self,
        cos_qn: np.ndarray,
        cos_qp: np.ndarray,
        cos_pn: np.ndarray,
        cov_n: np.ndarray,
        cov_p: np.ndarray,
    ) -> np.ndarray:
        return np.column_stack([cos_qn, cos_qp, cos_pn, cov_n, cov_p]).astype(np.float64)

    def probability(self, features: np.ndarray) -> np.ndarray:
        z = (features - np.asarray(self.mean)) / np.asarray(self.scale)
        logit = z @ np.asarray(self.coef) + self.intercept
        return 1.0 / (1.0 + np.exp(-logit))

    def decide(
        self, probability: np.ndarray, cos_pn: np.ndarray, same_text: np.ndarray, cfg: AchievabilityConfig
    ) -> tuple[np.ndarray, list[str | None]]:
        """``(achievable, reason)`` per row: duplicates first, then the probability against the threshold."""
        threshold = self.threshold if cfg.threshold is None else cfg.threshold
        dup = same_text | (cos_pn >= cfg.duplicate_cosine)
        ok = (probability >= threshold) & ~dup
        reasons: list[str | None] = [
            None if k else ("negative_duplicates_positive" if d else "negative_off_topic")
            for k, d in zip(ok.tolist(), dup.tolist(), strict=True)
        ]
        return ok, reasons


def same_text(a: Sequence[str], b: Sequence[str]) -> np.ndarray:
    return np.array([normalize_text(x) == normalize_text(y) for x, y in zip(a, b, strict=True)], dtype=bool)


def _normalized(emb: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(emb, axis=1, keepdims=True)
    return emb / np.where(norm == 0, 1, norm)


def score_triples(
    queries: Sequence[str],
    positives: Sequence[str],
    negatives: Sequence[str],
    embed,
    model: AchievabilityModel,
    cfg: AchievabilityConfig,
) -> dict[str, Any]:
    """Score triples given as texts; ``embed(texts) -> normalized np.ndarray`` with the model's encoder.

    Returns columns ``swap_probability``, ``swap_achievable``, ``achievability_reason`` and the features.
    """
    n = len(queries)
    if n == 0:
        return {"swap_probability": [], "swap_achievable": [], "achievability_reason": [], "features": np.zeros((0, 5))}
    q = _normalized(np.asarray(embed(list(queries)), dtype=np.float32))
    p = _normalized(np.asarray(embed(list(positives)), dtype=np.float32))
    d = _normalized(np.asarray(embed(list(negatives)), dtype=np.float32))
    qn, qp, pn = (q * d).sum(1), (q * p).sum(1), (p * d).sum(1)
    x = model.feature_matrix(qn, qp, pn, model.coverages(queries, negatives), model.coverages(queries, positives))
    prob = model.probability(x)
    ok, reasons = model.decide(prob, pn, same_text(positives, negatives), cfg)
    return {"swap_probability": prob, "swap_achievable": ok, "achievability_reason": reasons, "features": x}


class CandidateScorer:
    """The check applied to mining's candidate matrices: recorded LLM verdicts first, the model elsewhere.

    ``prepare`` is called once per corpus with the examples and the corpus texts; ``score`` then takes one chunk
    of candidates (document indices per example row) with the dense cosines mining already computed.
    """

    def __init__(self, model: AchievabilityModel, config: AchievabilityConfig, recording=None) -> None:
        self.model = model
        self.config = config
        self.recording = recording if config.use_recorded_verdicts else None
        self.threshold = model.threshold if config.threshold is None else config.threshold
        self.rank = config.enabled  # off: mining keeps its fused order and only annotates the verdicts
        self._q: list[tuple[dict[str, float], float]] = []
        self._d: list[set[str] | None] = []
        self._texts: list[str] = []
        self._doc_ids: list[str] = []
        self._recorded: dict[int, list] = {}

    def prepare(self, examples, doc_ids: list[str], doc_texts: list[str], positive_texts: list[str]) -> None:
        w = self.model.weights
        self._q = []
        for q in examples["query"].to_list():
            idf = {s: w.idf(s) for s in stems(q)}
            self._q.append((idf, sum(idf.values())))
        self._d = [None] * len(doc_texts)
        self._texts = doc_texts
        self._doc_ids = doc_ids
        self._recorded = {}
        if self.recording is None:
            return
        from ifir_pipeline.hashing import text_hash
        from ifir_pipeline.synthesis.recording import prefix_matches

        instr = examples["instruction"].to_list() if "instruction" in examples.columns else [None] * examples.height
        for i, (eid, q, ins, pos) in enumerate(
            zip(examples["example_id"].to_list(), examples["query"].to_list(), instr, positive_texts, strict=True)
        ):
            qh = text_hash(q)
            found = [
                r
                for r in self.recording.candidates(eid, qh)
                if r.query_hash == qh
                and normalize_text(r.instruction_given or "") == normalize_text(ins or "")
                and prefix_matches(pos, r.positive_hash, r.positive_chars)
            ]
            if found:
                self._recorded[i] = found

    def _stems(self, j: int) -> set[str]:
        s = self._d[j]
        if s is None:
            s = self._d[j] = stems(document_window(self._texts[j]))
        return s

    def coverage(self, row: int, doc: int) -> float:
        idf, total = self._q[row]
        if total <= 0:
            return 0.0
        ds = self._stems(doc)
        return sum(v for s, v in idf.items() if s in ds) / total

    def recorded_verdict(self, row: int, doc: int) -> int:
        """+1 recorded achievable, -1 recorded not achievable, 0 no recording for this triple."""
        from ifir_pipeline.synthesis.recording import prefix_matches

        for r in self._recorded.get(row, ()):
            if r.negative_id == self._doc_ids[doc] or prefix_matches(
                self._texts[doc], r.negative_hash, r.negative_chars
            ):
                return 1 if r.swap_achievable else -1
        return 0

    def score(
        self,
        rows: np.ndarray,
        cand: np.ndarray,
        mask: np.ndarray,
        cos_qn: np.ndarray,
        cos_qp: np.ndarray,
        cos_pn: np.ndarray,
        positives: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(probability, recorded)`` for a ``(chunk, width)`` block; NaN / 0 outside ``mask``."""
        prob = np.full(cand.shape, np.nan)
        recorded = np.zeros(cand.shape, dtype=np.int8)
        r_idx, c_idx = np.nonzero(mask)
        if r_idx.size == 0:
            return prob, recorded
        cov_n = np.array([self.coverage(int(rows[r]), int(cand[r, c])) for r, c in zip(r_idx, c_idx, strict=True)])
        cov_p_row = np.array(
            [self.coverage(int(row), int(p)) if p >= 0 else 0.0 for row, p in zip(rows, positives, strict=True)]
        )
        x = self.model.feature_matrix(
            cos_qn[r_idx, c_idx],
            np.broadcast_to(cos_qp, cand.shape)[r_idx, c_idx],
            cos_pn[r_idx, c_idx],
            cov_n,
            cov_p_row[r_idx],
        )
        prob[r_idx, c_idx] = self.model.probability(x)
        if self._recorded:
            for r, c in zip(r_idx.tolist(), c_idx.tolist(), strict=True):
                if int(rows[r]) in self._recorded:
                    recorded[r, c] = self.recorded_verdict(int(rows[r]), int(cand[r, c]))
        return prob, recorded

    def passes(self, prob: np.ndarray, recorded: np.ndarray, cos_pn: np.ndarray) -> np.ndarray:
        model_ok = (prob >= self.threshold) & (cos_pn < self.config.duplicate_cosine)
        return (recorded == 1) | ((recorded == 0) & np.nan_to_num(model_ok, nan=False).astype(bool))

    def reason(self, prob: float, recorded: int, cos_pn: float) -> str | None:
        if recorded == 1:
            return None
        if recorded == -1:
            return "recorded_not_achievable"
        if cos_pn >= self.config.duplicate_cosine:
            return "negative_duplicates_positive"
        return None if prob >= self.threshold else "negative_off_topic"
