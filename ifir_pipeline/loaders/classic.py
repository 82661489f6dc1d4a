"""Classic test-collection formats: TREC topics and qrels, and the Cranfield 1400 files.

TREC topics: ``query_id, title, description, narrative`` (all Utf8); the narrative is the original instruction
of FollowIR's Robust04/Core17 tasks. Cranfield: corpus/queries/qrels schemas as in BEIR; Cranfield's query
numbers in ``cran.qry`` are not sequential, and its qrels number queries 1..225 in file order.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from ifir_pipeline.errors import DataFormatError
from ifir_pipeline.loaders._read import (
    CORPUS_SCHEMA,
    QRELS_SCHEMA,
    QUERIES_SCHEMA,
    check_qrels_refs,
    read_delimited,
    resolve_uri,
)
from ifir_pipeline.loaders.beir import RetrievalSet

TOPICS_SCHEMA = {"query_id": pl.Utf8, "title": pl.Utf8, "description": pl.Utf8, "narrative": pl.Utf8}
_TOP = re.compile(r"<top>(.*?)</top>", re.S)
_FIELD = re.compile(r"<(num|title|desc|narr)>(.*?)(?=<(?:num|title|desc|narr)>|$)", re.S)


def load_trec_topics(path: str | Path) -> pl.DataFrame:
    path = resolve_uri(path)
    text = path.read_bytes()
    try:
        content = text.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataFormatError(str(path), content_line(text, exc.start), None, "not valid UTF-8") from None
    rows = []
    for m in _TOP.finditer(content):
        line = content[: m.start()].count("\n") + 1
        fields = {k: " ".join(v.split()) for k, v in _FIELD.findall(m.group(1))}
        if "num" not in fields:
            raise DataFormatError(str(path), line, "num", "topic without a number")
        num = re.sub(r"^Number:\s*", "", fields["num"]).strip()
        desc = re.sub(r"^Description:\s*", "", fields.get("desc", "")).strip()
        narr = re.sub(r"^Narrative:\s*", "", fields.get("narr", "")).strip()
        if not fields.get("title"):
            raise DataFormatError(str(path), line, "title", "empty text")
        rows.append((num, fields["title"], desc, narr))
    if not rows:
        raise DataFormatError(str(path), None, None, "no <top> topics found")
    return pl.DataFrame(rows, schema=TOPICS_SCHEMA, orient="row")


def content_line(raw: bytes, offset: int) -> int:
    return raw[:offset].count(b"\n") + 1


def _dot_records(path: Path) -> list[tuple[int, str, dict[str, str]]]:
    raw = path.read_bytes()
    if not raw.strip():
        raise DataFormatError(str(path), None, None, "file is empty")
    try:
        content = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataFormatError(str(path), content_line(raw, exc.start), None, "not valid UTF-8") from None
    records: list[tuple[int, str, dict[str, str]]] = []
    field = None
    for line_no, line in enumerate(content.splitlines(), start=1):
        if line.startswith(".I"):
            records.append((line_no, line[2:].strip(), {}))
            field = None
        elif re.match(r"^\.[A-Z]$", line.strip()):
            if not records:
                raise DataFormatError(str(path), line_no, line.strip(), "field before the first .I record")
            field = line.strip()[1]
            records[-1][2][field] = ""
        elif field is not None:
            records[-1][2][field] += " " + line.strip()
    return records


def load_cranfield(folder: str | Path) -> RetrievalSet:
    root = resolve_uri(folder)
    docs = []
    for _line, did, fields in _dot_records(root / "cran.all.1400"):
        # Two of the 1,400 published abstracts are empty; a benchmark is loaded as published.
        text = " ".join(fields.get("W", "").split())
        docs.append((did, " ".join(fields.get("T", "").split()), text))
    queries = []
    for i, (line, _qid, fields) in enumerate(_dot_records(root / "cran.qry"), start=1):
        text = " ".join(fields.get("W", "").split())
        if not text:
            raise DataFormatError(str(root / "cran.qry"), line, ".W", "empty text")
        queries.append((str(i), text))
    q, d, s, lines = [], [], [], []
    for line, cells in read_delimited(root / "cranqrel", " "):
        cells = [c for c in cells if c]
        if len(cells) != 3:
            raise DataFormatError(str(root / "cranqrel"), line, None, "expected 'query doc code'")
        q.append(cells[0])
        d.append(cells[1])
        # Cleverdon's codes: 1 (complete answer) .. 4 (minimum interest), -1 (none); map to graded gain.
        code = int(cells[2])
        s.append(max(0, 5 - code) if code > 0 else 0)
        lines.append(line)
    corpus = pl.DataFrame(docs, schema=CORPUS_SCHEMA, orient="row")
    qs = pl.DataFrame(queries, schema=QUERIES_SCHEMA, orient="row")
    qrels = pl.DataFrame({"query_id": q, "doc_id": d, "score": s}, schema=QRELS_SCHEMA)
    check_qrels_refs(root / "cranqrel", qrels, set(qs["query_id"]), set(corpus["doc_id"]), lines)
    return RetrievalSet(corpus=corpus, queries=qs, qrels=qrels, name="cranfield")
