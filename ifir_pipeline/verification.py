"""Label-swap verification: under I, d+ must outrank d-; under I', d- must outrank d+.

The offline verifier is independent of the writer: it never sees the writer's aspects. It reads any
instruction (templated or LLM-written) as clauses, treats a clause with a negation cue as an exclusion, and
scores a document by how much of each clause's content it covers (+ for requirements, - for exclusions).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import polars as pl

from ifir_pipeline.hashing import normalize_text
from ifir_pipeline.text_aspects import NEGATION_CUES, content_terms, tokens

REASON_CODES = {
    "swap_not_achievable": "the labels cannot truly be swapped (achievability check, recorded verdict or the "
    "writer LLM; see achievability_reason): not written, or written as not achievable",
    "writer_failed": "the writer produced no usable pair (see failure_reason)",
    "empty_instruction": "I or I' is empty",
    "instruction_too_long": "I or I' is longer than the configured limit",
    "identical_instructions": "I' equals I after normalization",
    "too_similar": "I' is too similar to I (token Jaccard above the threshold)",
    "original_not_satisfied": "under I the verifier does not rank d+ above d-",
    "reversal_not_satisfied": "under I' the verifier does not rank d- above d+",
    "eval_leakage": "the query or a document is evaluation data",
    "duplicate": "the same (query, instruction) occurs earlier in the partition",
    "judge_invalid_json": "the LLM judge's answer was not the expected JSON",
    "refusal": "the LLM judge refused",
    "transport_error": "the LLM judge could not be reached after retries",
}

NOT_ACHIEVABLE_FAILURES = ("not_achievable", "swap_not_achievable")

_CLAUSE_SPLIT = re.compile(r"(?<=[.;:!?])\s+|\s+(?:but|whereas|while)\s+", re.I)


def clauses(instruction: str) -> list[tuple[int, set[str]]]:
    """Split an instruction into (sign, content terms) clauses: -1 where a negation cue governs it."""
    out = []
    for part in _CLAUSE_SPLIT.split(instruction):
        terms = content_terms(part)
        if terms:
            out.append((-1 if NEGATION_CUES.search(part) else 1, terms))
    return out


def instruction_score(instruction: str, document: str, query: str = "") -> float:
    """Requirement coverage minus exclusion coverage of ``document`` under ``instruction``."""
    doc = set(tokens(document))
    q = content_terms(query)
    score = 0.0
    for sign, terms in clauses(instruction):
        terms = terms - q or terms
        score += sign * len(terms & doc) / len(terms)
    return score


def jaccard(a: str, b: str) -> float:
    sa, sb = set(tokens(a)), set(tokens(b))
    return len(sa & sb) / max(len(sa | sb), 1)


@dataclass(frozen=True)
class VerifyConfig:
    max_instruction_chars: int = 1200
    max_similarity: float = 0.9
    margin: float = 0.0
    # Writers whose rows keep their own LLM verdict when the verifier is the offline lexical one: it reads
    # templated clauses well and LLM prose badly (it rejected 30% of recorded LLM swaps, mostly "documents
    # about X, rather than Y, are not relevant" read as excluding both). Its verdict on them is still kept
    # in ``lexical_verdict``. Empty: the lexical verifier judges every row.
    llm_writers: tuple[str, ...] = ("recorded", "anthropic")


def precheck(inst: str | None, inst_rev: str | None, cfg: VerifyConfig) -> str | None:
    """Checks that need no scorer: empty, too long, identical or near-identical instructions."""
    if not inst or not inst.strip() or not inst_rev or not inst_rev.strip():
        return "empty_instruction"
    if max(len(inst), len(inst_rev)) > cfg.max_instruction_chars:
        return "instruction_too_long"
    if normalize_text(inst) == normalize_text(inst_rev):
        return "identical_instructions"
    if jaccard(inst, inst_rev) > cfg.max_similarity:
        return "too_similar"
    return None


def lexical_swap_verdict(query: str, inst: str, inst_rev: str, pos: str, neg: str, margin: float = 0.0) -> str | None:
    """The offline label-swap verdict: None when d+ wins under I and d- wins under I'."""
    if instruction_score(inst, pos, query) - instruction_score(inst, neg, query) <= margin:
        return "original_not_satisfied"
    if instruction_score(inst_rev, neg, query) - instruction_score(inst_rev, pos, query) <= margin:
        return "reversal_not_satisfied"
    return None


def verify_pair(
    query: str, inst: str | None, inst_rev: str | None, pos: str, neg: str, cfg: VerifyConfig
) -> str | None:
    """Return ``None`` when the pair passes, else a reason code from :data:`REASON_CODES`."""
    return precheck(inst, inst_rev, cfg) or lexical_swap_verdict(
        query, inst or "", inst_rev or "", pos, neg, cfg.margin
    )


def verify_frame(
    pairs: pl.DataFrame, texts: dict[str, str], cfg: VerifyConfig, leaked: set[str] | None = None, judge=None
) -> pl.Series:
    """Per row, in row order: ``rejection_reason`` (null = accepted), ``verified_by``, the offline lexical
    verifier's verdict (``lexical_verdict``: ``swapped`` or its reason, for every row that reached it) and the
    LLM judge's own verdict (``judge_verdict``) when a judge is given.

    Pairs that cannot swap (skipped by the check, or answered "not achievable") are ``swap_not_achievable``.
    Pre-checks next; then the label-swap verdict, from ``judge`` (a :class:`~ifir_pipeline.judge.LabelSwapJudge`)
    when given, else the offline lexical verifier; last, duplicates of an earlier accepted pair.
    """
    leaked = leaked or set()
    rows = pairs.to_dicts()
    reasons: list[str | None] = []
    for row in rows:
        if row["status"] == "skipped" or row.get("failure_reason") in NOT_ACHIEVABLE_FAILURES:
            reasons.append("swap_not_achievable")
        elif row["status"] != "ok":
            reasons.append("writer_failed")
        elif row["pair_id"] in leaked:
            reasons.append("eval_leakage")
        else:
            reasons.append(precheck(row["instruction_og"], row["instruction_reversed"], cfg))
    todo = [i for i, r in enumerate(reasons) if r is None]
    judge_verdicts: list[str | None] = [None] * len(rows)
    lexical: list[str | None] = [None] * len(rows)
    verified_by: list[str | None] = [None] * len(rows)
    if judge is not None:
        from ifir_pipeline.judge import JudgeRequest

        fields = ("pair_id", "query", "instruction_og", "instruction_reversed")
        reqs = [
            JudgeRequest(*(rows[i][f] for f in fields), texts[rows[i]["positive_id"]], texts[rows[i]["negative_id"]])
            for i in todo
        ]
        for i, res in zip(todo, judge.judge(reqs), strict=True):
            reasons[i] = res.verdict if res.status == "ok" else (res.failure_reason or "judge_failed")
            judge_verdicts[i] = ("swapped" if res.verdict is None else res.verdict) if res.status == "ok" else None
            verified_by[i] = "anthropic-judge"
    for i in todo:
        r = rows[i]
        lexical[i] = (
            lexical_swap_verdict(
                r["query"],
                r["instruction_og"],
                r["instruction_reversed"],
                texts[r["positive_id"]],
                texts[r["negative_id"]],
                cfg.margin,
            )
            or "swapped"
        )
        if judge is None:
            if r.get("writer") in cfg.llm_writers:
                verified_by[i] = f"writer-llm:{r.get('writer')}"
            else:
                reasons[i] = None if lexical[i] == "swapped" else lexical[i]
                verified_by[i] = "offline-lexical"
    seen: set[tuple[str, str]] = set()
    for i, row in enumerate(rows):
        if reasons[i] is not None:
            continue
        key = (normalize_text(row["query"]), normalize_text(row["instruction_og"]))
        key_rev = (normalize_text(row["query"]), normalize_text(row["instruction_reversed"]))
        if key in seen or key_rev in seen:
            reasons[i] = "duplicate"
        else:
            seen.update((key, key_rev))
    return pl.DataFrame(
        {
            "rejection_reason": reasons,
            "verified_by": verified_by,
            "lexical_verdict": lexical,
            "judge_verdict": judge_verdicts,
        },
        schema={
            "rejection_reason": pl.Utf8,
            "verified_by": pl.Utf8,
            "lexical_verdict": pl.Utf8,
            "judge_verdict": pl.Utf8,
        },
    )
