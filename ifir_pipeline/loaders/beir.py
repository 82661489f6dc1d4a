"""BEIR layout: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``.

Schemas (polars, explicit dtypes):
- corpus: ``doc_id: Utf8, title: Utf8, text: Utf8``
- queries: ``query_id: Utf8, text: Utf8``
- qrels: ``query_id: Utf8, doc_id: Utf8, score: Int32``
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from ifir_pipeline.errors import DataFormatError
from ifir_pipeline.loaders._read import (
    CORPUS_SCHEMA,
    QRELS_SCHEMA,
    QUERIES_SCHEMA,
    check_qrels_refs,
    check_unique,
    read_delimited,
    read_jsonl,
    require_str,
    resolve_uri,
)


@dataclass(frozen=True)
class RetrievalSet:
    """A corpus, its queries and graded judgments."""

    corpus: pl.DataFrame
    queries: pl.DataFrame
    qrels: pl.DataFrame
    name: str = ""


def read_corpus_jsonl(path: Path, allow_empty: bool = False) -> pl.DataFrame:
    """Read a corpus; ``allow_empty`` keeps empty documents, as published benchmarks sometimes hold them."""
    rows = []
    for line, rec in read_jsonl(path):
        doc_id = require_str(path, line, rec, "_id")
        text = require_str(path, line, rec, "text", allow_empty=allow_empty)
        title = rec.get("title") or ""
        if not isinstance(title, str):
            raise DataFormatError(str(path), line, "title", f"expected a string, got {type(title).__name__}")
        rows.append((line, doc_id, title + "\x00" + text))
    kept = check_unique(path, rows, "_id")
    titles, texts = zip(*(r[2].split("\x00", 1) for r in kept), strict=True) if kept else ((), ())
    return pl.DataFrame(
        {"doc_id": [r[1] for r in kept], "title": list(titles), "text": list(texts)}, schema=CORPUS_SCHEMA
    )


def read_queries_jsonl(path: Path, text_field: str = "text") -> pl.DataFrame:
    rows = []
    for line, rec in read_jsonl(path):
        rows.append((line, require_str(path, line, rec, "_id"), require_str(path, line, rec, text_field)))
    kept = check_unique(path, rows, "_id")
    return pl.DataFrame({"query_id": [r[1] for r in kept], "text": [r[2] for r in kept]}, schema=QUERIES_SCHEMA)


def read_qrels_tsv(path: Path) -> tuple[pl.DataFrame, list[int]]:
    qids, dids, scores, lines = [], [], [], []
    for line, cells in read_delimited(path, "\t"):
        if len(cells) == 4:  # TREC style: qid 0 docid rel
            cells = [cells[0], cells[2], cells[3]]
        if len(cells) != 3:
            raise DataFormatError(str(path), line, None, f"expected 3 tab-separated columns, got {len(cells)}")
        try:
            value = float(cells[2])
        except ValueError:
            if line == 1:  # header
                continue
            raise DataFormatError(str(path), line, "score", f"not a number: {cells[2]!r}") from None
        if not math.isfinite(value) or value != int(value) or not -(2**31) <= value < 2**31:
            raise DataFormatError(
                str(path), line, "score", f"a relevance grade must be a whole number, got {cells[2].strip()!r}"
            )
        score = int(value)
        qids.append(cells[0].strip())
        dids.append(cells[1].strip())
        scores.append(score)
        lines.append(line)
    if not qids:
        raise DataFormatError(str(path), None, None, "no judgments in file")
    return pl.DataFrame({"query_id": qids, "doc_id": dids, "score": scores}, schema=QRELS_SCHEMA), lines


def load_beir(folder: str | Path, split: str = "test", name: str = "") -> RetrievalSet:
    """Load a BEIR-format folder (local or ``s3://``) and check that qrels name known ids."""
    root = resolve_uri(folder)
    for required in ("corpus.jsonl", "queries.jsonl", f"qrels/{split}.tsv"):
        if not (root / required).exists():
            raise DataFormatError(str(root / required), None, None, "missing file of the BEIR layout")
    corpus = read_corpus_jsonl(root / "corpus.jsonl")
    queries = read_queries_jsonl(root / "queries.jsonl")
    qrels, lines = read_qrels_tsv(root / "qrels" / f"{split}.tsv")
    check_qrels_refs(root / "qrels" / f"{split}.tsv", qrels, set(queries["query_id"]), set(corpus["doc_id"]), lines)
    return RetrievalSet(corpus=corpus, queries=queries, qrels=qrels, name=name or root.name)
