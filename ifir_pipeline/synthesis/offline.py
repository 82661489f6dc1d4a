"""The offline writer (embedded default): deterministic, fast, no key needed.

It finds what distinguishes d- from d+ (key phrases central to each document and absent from the other,
numbers and named things included) and writes I' in varied phrasings: a requirement on d-'s aspect, an
exclusion of d+'s aspect, or both. Exclusions name a phrase that occurs only in the document that must lose,
so a model that is merely attracted to instruction keywords is penalised (see the evidence notes). When the
source has no instruction it writes I the same way with the roles swapped.
"""

from __future__ import annotations

from ifir_pipeline.hashing import stable_hash
from ifir_pipeline.synthesis.base import InversionRequest, InversionResult
from ifir_pipeline.synthesis.prompt import POLARITY_REVERSAL_PROMPT_VERSION
from ifir_pipeline.text_aspects import PhraseStats, distinguishing_aspects

REQUIREMENT_TEMPLATES = (
    "Relevant documents must specifically address {x}; a passage that only matches the general topic is not enough.",
    "Only documents that discuss {x} count as relevant.",
    "I am looking for material on {x}. A document has to cover {x} to be useful.",
    "A relevant document reports on {x} in particular.",
    "To be relevant, a passage must deal with {x}.",
    "Focus on {x}: the answer should come from a text about {x}.",
    "Relevant passages describe {x} explicitly.",
)
EXCLUSION_TEMPLATES = (
    "Documents that discuss {y} are not relevant.",
    "Exclude anything about {y}.",
    "Any passage concerned with {y} should be judged not relevant, even if it matches the query.",
    "I am not interested in {y}; documents about it do not count.",
    "Relevant documents answer the question without dealing with {y}.",
    "Passages that mention {y} must be rejected.",
    "Ignore texts on {y}; they are irrelevant here.",
)
# Exclusion-heavy on purpose: exclusions are where keyword attraction fails (evidence notes).
STYLE_WEIGHTS = (("requirement", 35), ("exclusion", 40), ("both", 25))


def _pick(options: tuple[str, ...], key: str) -> str:
    return options[int(stable_hash(key), 16) % len(options)]


def _style(key: str) -> str:
    roll = int(stable_hash(["style", key]), 16) % 100
    acc = 0
    for style, w in STYLE_WEIGHTS:
        acc += w
        if roll < acc:
            return style
    return STYLE_WEIGHTS[-1][0]


def _stems(phrase: str) -> set[str]:
    return {w[:5] for w in phrase.replace("-", " ").split()}


def _join(aspects: list[str], key: str, word: str = "and") -> str:
    """One aspect, or two (a third of the time) when they share no word stem: "hsv-2 and simplex virus hsv"
    reads as noise, "hsv-2 and trial design" as an instruction."""
    if (
        len(aspects) > 1
        and not (_stems(aspects[0]) & _stems(aspects[1]))
        and int(stable_hash([key, "two"]), 16) % 3 == 0
    ):
        return f"{aspects[0]} {word} {aspects[1]}"
    return aspects[0]


def write_instruction(style: str, want: list[str], avoid: list[str], key: str) -> str | None:
    """An instruction under which a document with ``want`` wins and one with ``avoid`` loses."""
    if style in ("requirement", "both") and not want:
        style = "exclusion"
    if style in ("exclusion", "both") and not avoid:
        style = "requirement"
    if style == "requirement" and want:
        return _pick(REQUIREMENT_TEMPLATES, key + "r").format(x=_join(want, key))
    if style == "exclusion" and avoid:
        return _pick(EXCLUSION_TEMPLATES, key + "e").format(y=_join(avoid, key, "or"))
    if style == "both" and want and avoid:
        req = _pick(REQUIREMENT_TEMPLATES, key + "r").format(x=want[0])
        exc = _pick(EXCLUSION_TEMPLATES, key + "e").format(y=avoid[0])
        return f"{req} {exc}"
    return None


class OfflineBackend:
    """Deterministic polarity reversal from the documents' distinguishing key phrases."""

    name = "offline"
    model = "offline-keyphrase-v2"

    def __init__(self, stats: PhraseStats) -> None:
        self.stats = stats

    def invert(self, requests: list[InversionRequest]) -> list[InversionResult]:
        return [self._one(r) for r in requests]

    def _one(self, r: InversionRequest) -> InversionResult:
        key = stable_hash(
            [POLARITY_REVERSAL_PROMPT_VERSION, self.model, r.query, r.instruction, r.positive, r.negative]
        )
        res = InversionResult(pair_id=r.pair_id, model=self.model, cache_key=key)
        pos_aspects = distinguishing_aspects(r.positive, r.negative, r.query + " " + (r.instruction or ""), self.stats)
        neg_aspects = distinguishing_aspects(r.negative, r.positive, r.query + " " + (r.instruction or ""), self.stats)
        if not pos_aspects and not neg_aspects:
            res.failure_reason = "no_distinguishing_aspect"
            res.rationale = "the two documents share every central phrase"
            return res
        instruction = r.instruction
        if not instruction:
            og_style = "requirement" if int(stable_hash(["og", key]), 16) % 100 < 60 else "exclusion"
            instruction = write_instruction(og_style, pos_aspects, neg_aspects, key + "og")
            res.og_generated = True
        style = _style(key)
        reversed_instruction = write_instruction(style, neg_aspects, pos_aspects, key + "rev")
        if not instruction or not reversed_instruction:
            res.failure_reason = "no_distinguishing_aspect"
            return res
        if style == "both" and not (neg_aspects and pos_aspects):
            style = "requirement" if neg_aspects else "exclusion"
        elif style == "requirement" and not neg_aspects:
            style = "exclusion"
        elif style == "exclusion" and not pos_aspects:
            style = "requirement"
        res.instruction_og = instruction
        res.instruction_reversed = reversed_instruction
        res.style = style
        res.rationale = f"d+ is distinguished by {pos_aspects[:2]}, d- by {neg_aspects[:2]}"
        res.swap_achievable = True
        res.status = "ok"
        return res
