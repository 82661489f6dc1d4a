"""SQuAD JSON (v1.1 and v2.0), ``.json`` or ``.json.gz``, local or ``s3://``.

Each answerable question is an example whose positive is its paragraph. Paragraphs are documents titled by
their article, and the article is the document's ``group``: mining takes negatives from the same article,
which are on-topic negatives (the kind polarity reversal needs). v2.0's unanswerable questions have no
positive paragraph and are skipped (counted in :class:`SquadStats`).

Layout read: ``data[].title``, ``data[].paragraphs[].context``, ``paragraphs[].qas[]`` with ``id``,
``question`` and, in v2.0, ``is_impossible``.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from ifir_pipeline.errors import DataFormatError
from ifir_pipeline.loaders._read import resolve_uri


@dataclass(frozen=True)
class SquadStats:
    articles: int
    paragraphs: int
    questions: int
    unanswerable_skipped: int
    capped_skipped: int


def _load_json(path: Path) -> Any:
    raw = path.read_bytes()
    if not raw:
        raise DataFormatError(str(path), None, None, "file is empty")
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError) as exc:
            raise DataFormatError(str(path), None, None, f"truncated or corrupt gzip ({exc})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataFormatError(str(path), None, None, f"not valid UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataFormatError(
            str(path), exc.lineno, None, f"invalid JSON ({exc.msg} at column {exc.colno}); truncated file?"
        ) from None


def _str(path: Path, where: str, obj: dict, field: str) -> str:
    value = obj.get(field)
    if not isinstance(value, str) or not value.strip():
        raise DataFormatError(str(path), where, field, "missing or empty string")
    return value


def load_squad(
    path: str | Path, source: str = "squad", max_questions_per_paragraph: int | None = None
) -> tuple[pl.DataFrame, pl.DataFrame, SquadStats]:
    """``(examples, documents, stats)``: examples ``query_id, query, positive_id`` (ids not yet namespaced);
    documents ``doc_id, title, text, group``. ``max_questions_per_paragraph`` keeps the first N questions
    of each paragraph (fewer repeats of one positive)."""
    p = resolve_uri(path)
    data = _load_json(p)
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise DataFormatError(str(p), None, "data", "expected a SQuAD JSON object with a 'data' list")
    if max_questions_per_paragraph is not None and max_questions_per_paragraph < 1:
        raise ValueError(f"max_questions_per_paragraph must be >= 1, got {max_questions_per_paragraph}")
    ex_rows: list[tuple[str, str, str]] = []
    doc_rows: list[tuple[str, str, str, str]] = []
    seen_q: dict[str, str] = {}
    unanswerable = capped = 0
    for ai, article in enumerate(data["data"]):
        where_a = f"data[{ai}]"
        if not isinstance(article, dict):
            raise DataFormatError(str(p), where_a, None, "expected an object")
        title = _str(p, where_a, article, "title")
        paragraphs = article.get("paragraphs")
        if not isinstance(paragraphs, list):
            raise DataFormatError(str(p), where_a, "paragraphs", "expected a list")
        group = title
        for pi, para in enumerate(paragraphs):
            where_p = f"{where_a}.paragraphs[{pi}]"
            if not isinstance(para, dict):
                raise DataFormatError(str(p), where_p, None, "expected an object")
            context = _str(p, where_p, para, "context")
            doc_id = f"{title}-p{pi}"
            doc_rows.append((doc_id, title.replace("_", " "), context, group))
            qas = para.get("qas", [])
            if not isinstance(qas, list):
                raise DataFormatError(str(p), where_p, "qas", "expected a list")
            kept = 0
            for qi, qa in enumerate(qas):
                where_q = f"{where_p}.qas[{qi}]"
                if not isinstance(qa, dict):
                    raise DataFormatError(str(p), where_q, None, "expected an object")
                qid = _str(p, where_q, qa, "id")
                question = _str(p, where_q, qa, "question")
                impossible = qa.get("is_impossible", False)
                if not isinstance(impossible, bool):
                    raise DataFormatError(str(p), where_q, "is_impossible", "must be true or false")
                if impossible:
                    unanswerable += 1
                    continue
                if qid in seen_q:
                    raise DataFormatError(
                        str(p), where_q, "id", f"duplicate question id {qid!r} (first at {seen_q[qid]})"
                    )
                seen_q[qid] = where_q
                if max_questions_per_paragraph is not None and kept >= max_questions_per_paragraph:
                    capped += 1
                    continue
                kept += 1
                ex_rows.append((qid, question.strip(), doc_id))
    if not ex_rows:
        raise DataFormatError(str(p), None, "data", "no answerable questions")
    examples = pl.DataFrame(
        ex_rows, schema={"query_id": pl.Utf8, "query": pl.Utf8, "positive_id": pl.Utf8}, orient="row"
    )
    documents = pl.DataFrame(
        doc_rows, schema={"doc_id": pl.Utf8, "title": pl.Utf8, "text": pl.Utf8, "group": pl.Utf8}, orient="row"
    )
    stats = SquadStats(
        articles=len(data["data"]),
        paragraphs=len(doc_rows),
        questions=len(ex_rows),
        unanswerable_skipped=unanswerable,
        capped_skipped=capped,
    )
    return examples, documents, stats
