"""Tevatron / Promptriever training layout (JSONL, one query per line).

Each record: ``query_id``, ``query``, ``positive_passages`` and ``negative_passages`` (lists of
``{"docid", "title", "text"}``). Promptriever's msmarco-w-instructions adds an ``instruction`` (also read from
``only_instruction``) and instruction negatives, passages that match the query but violate the instruction
(``instruction_negatives``, or ``new_negatives`` as that data set names them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ifir_pipeline.errors import DataFormatError
from ifir_pipeline.loaders._read import read_jsonl, require_str, resolve_uri

INSTRUCTION_FIELDS = ("instruction", "only_instruction")
INSTRUCTION_NEGATIVE_FIELDS = ("instruction_negatives", "new_negatives")


def _passages(path: Path, line: int, rec: dict[str, Any], field: str) -> list[tuple[str, str, str]]:
    value = rec.get(field, [])
    if value is None:
        return []
    if not isinstance(value, list):
        raise DataFormatError(str(path), line, field, f"expected a list of passages, got {type(value).__name__}")
    out = []
    for i, p in enumerate(value):
        if not isinstance(p, dict):
            raise DataFormatError(str(path), line, f"{field}[{i}]", "expected an object with docid, text")
        docid = require_str(path, line, p, "docid")
        text = require_str(path, line, p, "text")
        title = p.get("title") or ""
        if not isinstance(title, str):
            raise DataFormatError(str(path), line, f"{field}[{i}].title", "expected a string")
        out.append((docid, title, text))
    return out


def read_tevatron(path: str | Path) -> tuple[list[dict[str, Any]], dict[str, tuple[str, str]]]:
    """Return example rows and a ``docid -> (title, text)`` map of every passage seen."""
    path = resolve_uri(path)
    examples, docs = [], {}
    for line, rec in read_jsonl(path):
        qid = require_str(path, line, rec, "query_id")
        query = require_str(path, line, rec, "query")
        instruction = None
        for f in INSTRUCTION_FIELDS:
            if rec.get(f) not in (None, ""):
                instruction = require_str(path, line, rec, f)
                break
        positives = _passages(path, line, rec, "positive_passages")
        if not positives:
            raise DataFormatError(str(path), line, "positive_passages", "no positive passage")
        inst_negs: list[tuple[str, str, str]] = []
        for f in INSTRUCTION_NEGATIVE_FIELDS:
            if f in rec:
                inst_negs = _passages(path, line, rec, f)
                break
        for docid, title, text in positives + inst_negs + _passages(path, line, rec, "negative_passages"):
            prev = docs.get(docid)
            if prev is not None and prev[1] != text:
                raise DataFormatError(str(path), line, "docid", f"duplicate id {docid!r} with different text")
            docs[docid] = (title, text)
        examples.append(
            {
                "query_id": qid,
                "query": query,
                "instruction": instruction,
                "positive_id": positives[0][0],
                "instruction_negative_ids": [d for d, _, _ in inst_negs],
            }
        )
    return examples, docs
