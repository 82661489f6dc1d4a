"""Key-phrase aspects of a document: what is central to it (title, first sentence, repeated terms).

Shared vocabulary for the offline writer and, through :func:`content_terms`, the offline verifier.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being below
    between both but by can could did do does doing down during each either few for from further had has have
    having he her here hers him his how i if in into is it its itself just may me might more most much must my
    no nor not of off on once only or other our out over own per same she should so some such than that the
    their them then there these they this those through to too under until up upon very via was we were what
    when where which while who whom why will with within without would yet you your using used use based one two
    three new however thus therefore whether among well found show shows shown study studies result results
    patients paper present presented report reported data effect effects associated compared high higher low
    lower increased decreased significant significantly including include includes many several often usually
    will can may et al vs de""".split()
)
GENERIC_INSTRUCTION_WORDS = frozenset(
    """relevant relevance irrelevant document documents passage passages text texts article articles discuss
    discusses discussing discussed address addresses addressing mention mentions mentioning concern concerned
    concerns focus focuses describe describes describing must need needs required requirement only exclude
    excluded excludes excluding consider considered count counts qualify qualifies prefer preferred answer
    answers question query topic matches merely enough nothing else specifically specific explicitly clearly
    primarily mainly main central cover covers covering deal deals dealing treat treats treatment's is are""".split()
)
NEGATION_CUES = re.compile(
    r"\b(not|no|never|exclude[sd]?|excluding|irrelevant|except|unless|rather than|instead of|ignore|avoid|"
    r"disregard|reject(?:ed)?|isn't|aren't|don't|doesn't|neither|nor|without)\b",
    re.I,
)
_TOKEN = re.compile(r"[a-z0-9][a-z0-9\-\.%/]*[a-z0-9%]|[a-z0-9]", re.I)


def tokens(text: str) -> list[str]:
    return [t.lower() for t in _TOKEN.findall(text)]


def content_terms(text: str) -> set[str]:
    return {t for t in tokens(text) if t not in STOPWORDS and t not in GENERIC_INSTRUCTION_WORDS and len(t) > 2}


def candidate_phrases(toks: list[str], max_n: int = 3) -> Iterable[tuple[str, ...]]:
    for n in range(1, max_n + 1):
        for i in range(len(toks) - n + 1):
            gram = tuple(toks[i : i + n])
            if gram[0] in STOPWORDS or gram[-1] in STOPWORDS or len(gram[-1]) < 3 or len(gram[0]) < 2:
                continue
            if any(g.isdigit() and len(g) < 2 for g in gram):
                continue
            yield gram


@dataclass
class PhraseStats:
    """Document frequencies of phrases over a collection, for IDF weighting."""

    df: Counter
    n_docs: int

    @classmethod
    def fit(cls, texts: Iterable[str], max_n: int = 3) -> PhraseStats:
        df: Counter = Counter()
        n = 0
        for t in texts:
            n += 1
            df.update(set(candidate_phrases(tokens(t), max_n)))
        return cls(df=df, n_docs=max(n, 1))

    def idf(self, gram: tuple[str, ...]) -> float:
        return math.log((self.n_docs + 1) / (self.df.get(gram, 0) + 1)) + 1.0


def contains_phrase(toks: list[str], gram: tuple[str, ...]) -> bool:
    n = len(gram)
    return any(tuple(toks[i : i + n]) == gram for i in range(len(toks) - n + 1))


def distinguishing_aspects(
    doc: str, other: str, query: str, stats: PhraseStats, top: int = 3, title: str = ""
) -> list[str]:
    """Phrases central to ``doc`` that ``other`` does not contain and the query does not already say.

    Centrality: tf-idf, boosted for the title and first sentence and for multi-word phrases, so the aspect
    reads like what the document is about rather than a stray word.
    """
    d_toks = tokens(f"{title} {doc}")
    o_toks = tokens(other)
    o_set = set(o_toks)
    o_grams = {tuple(o_toks[i : i + n]) for n in (2, 3) for i in range(len(o_toks) - n + 1)}
    q_set = set(tokens(query))
    first = set(tokens(title + " " + re.split(r"(?<=[.!?])\s", doc, maxsplit=1)[0]))
    tf = Counter(candidate_phrases(d_toks))
    scored = []
    for gram, f in tf.items():
        if all(g in q_set for g in gram):
            continue
        if (len(gram) == 1 and gram[0] in o_set) or gram in o_grams:
            continue
        if any(g in GENERIC_INSTRUCTION_WORDS for g in gram):
            continue
        if stats.df.get(gram, 0) < 2 and len(gram) > 1:  # a phrase seen once in the whole pool is noise
            continue
        score = (1 + math.log(f)) * stats.idf(gram) * (1.0 + 0.5 * (len(gram) - 1))
        if all(g in first for g in gram):
            score *= 1.6
        if any(g in o_set for g in gram):  # partly shared: weaker contrast
            score *= 0.6
        scored.append((score, gram))
    scored.sort(key=lambda x: (-x[0], x[1]))
    out: list[str] = []
    used: set[str] = set()
    for _, gram in scored:
        if any(g in used for g in gram):
            continue
        out.append(" ".join(gram))
        used.update(gram)
        if len(out) >= top:
            break
    return out
