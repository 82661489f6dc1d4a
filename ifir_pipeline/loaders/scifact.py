"""SciFact CSV export: abstracts printed as numpy string arrays, cited ids as ``[1 2 3]``.

- ``load_scifact_corpus`` -> corpus schema (``doc_id, title, text``; text = sentences joined by spaces)
- ``load_scifact_claims`` -> a :class:`RetrievalSet`-style queries + qrels pair: a claim's relevant documents
  are its ``evidence_doc_id`` values and its ``cited_doc_ids`` (as BEIR's SciFact test split does).
"""

from __future__ import annotations

import ast
import csv
import io
import re
import tokenize
from pathlib import Path

import polars as pl

from ifir_pipeline.errors import DataFormatError
from ifir_pipeline.loaders._read import CORPUS_SCHEMA, QRELS_SCHEMA, QUERIES_SCHEMA, check_unique, resolve_uri
from ifir_pipeline.loaders.beir import RetrievalSet

_INT_LIST = re.compile(r"^\[\s*(\d+(?:[\s,]+\d+)*)?\s*\]$")


def parse_array_of_strings(text: str) -> list[str]:
    """Parse ``"['a' 'b'\\n 'c']"`` (numpy's print of a string array) into ``['a', 'b', 'c']``.

    Adjacent literals would concatenate under ``ast.literal_eval``, so each string token is read alone.
    """
    text = text.strip()
    if not (text.startswith("[") and text.endswith("]")):
        raise ValueError("not a bracketed array")
    out = []
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.STRING:
            out.append(ast.literal_eval(tok.string))
        elif tok.type in (
            tokenize.OP,
            tokenize.NL,
            tokenize.NEWLINE,
            tokenize.ENDMARKER,
            tokenize.INDENT,
            tokenize.DEDENT,
        ):
            continue
        else:
            raise ValueError(f"unexpected token {tok.string!r}")
    return out


def parse_int_list(text: str) -> list[str]:
    m = _INT_LIST.match(text.strip())
    if not m:
        raise ValueError("expected a list of integers like [1 2 3]")
    return re.findall(r"\d+", m.group(1) or "")


def _rows(path: Path, required: list[str]) -> list[tuple[int, dict[str, str]]]:
    raw = path.read_bytes()
    if not raw.strip():
        raise DataFormatError(str(path), None, None, "file is empty")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataFormatError(str(path), line, None, "not valid UTF-8") from None
    csv.field_size_limit(1 << 30)
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in required if c not in (reader.fieldnames or [])]
    if missing:
        raise DataFormatError(str(path), 1, missing[0], "missing required column")
    rows = []
    for rec in reader:
        rows.append((reader.line_num, rec))
    return rows


def load_scifact_corpus(path: str | Path) -> pl.DataFrame:
    path = resolve_uri(path)
    rows = []
    for line, rec in _rows(path, ["doc_id", "title", "abstract"]):
        try:
            sentences = parse_array_of_strings(rec["abstract"])
        except (ValueError, SyntaxError, tokenize.TokenError) as exc:
            raise DataFormatError(str(path), line, "abstract", f"cannot parse sentence array: {exc}") from None
        text = " ".join(s.strip() for s in sentences if s.strip())
        if not text:
            raise DataFormatError(str(path), line, "abstract", "empty text")
        rows.append((line, rec["doc_id"].strip(), rec["title"].strip() + "\x00" + text))
    kept = check_unique(path, rows, "doc_id")
    parts = [r[2].split("\x00", 1) for r in kept]
    return pl.DataFrame(
        {"doc_id": [r[1] for r in kept], "title": [p[0] for p in parts], "text": [p[1] for p in parts]},
        schema=CORPUS_SCHEMA,
    )


def load_scifact_claims(path: str | Path, corpus_ids: set[str] | None = None) -> RetrievalSet:
    """Claims and their relevant abstracts; a claim may span several rows (one per evidence document)."""
    path = resolve_uri(path)
    texts: dict[str, tuple[int, str]] = {}
    rel: dict[str, set[str]] = {}
    lines: dict[tuple[str, str], int] = {}
    for line, rec in _rows(path, ["id", "claim", "evidence_doc_id", "cited_doc_ids"]):
        cid = rec["id"].strip()
        claim = rec["claim"].strip()
        if not claim:
            raise DataFormatError(str(path), line, "claim", "empty text")
        if cid in texts and texts[cid][1] != claim:
            raise DataFormatError(
                str(path), line, "id", f"duplicate id {cid!r} with different text (first on line {texts[cid][0]})"
            )
        texts.setdefault(cid, (line, claim))
        try:
            cited = parse_int_list(rec["cited_doc_ids"])
        except ValueError as exc:
            raise DataFormatError(str(path), line, "cited_doc_ids", str(exc)) from None
        docs = set(cited)
        if rec["evidence_doc_id"].strip():
            docs.add(rec["evidence_doc_id"].strip())
        for d in docs:
            lines.setdefault((cid, d), line)
        rel.setdefault(cid, set()).update(docs)
    if corpus_ids is not None:
        for (_claim, d), line in lines.items():
            if d not in corpus_ids:
                raise DataFormatError(str(path), line, "cited_doc_ids", f"names unknown document {d!r}")
    queries = pl.DataFrame({"query_id": list(texts), "text": [t for _, t in texts.values()]}, schema=QUERIES_SCHEMA)
    q, d = [], []
    for claim_id, docs in rel.items():
        for doc in sorted(docs):
            q.append(claim_id)
            d.append(doc)
    qrels = pl.DataFrame({"query_id": q, "doc_id": d, "score": [1] * len(q)}, schema=QRELS_SCHEMA)
    return RetrievalSet(corpus=pl.DataFrame(schema=CORPUS_SCHEMA), queries=queries, qrels=qrels, name=path.stem)
