"""FollowIR in mteb's layout: og/changed query pairs, instructions, candidates and the changed qrels.

Local folders hold the configs as JSONL (``corpus``, ``queries``, ``instruction``, ``top_ranked``,
``qrel_diff``) plus ``qrels/test.tsv``; the real Core17/News21/Robust04 sets load from the hub through
``datasets`` at a pinned revision.

Schemas: corpus/queries/qrels as in :mod:`ifir_pipeline.loaders.beir`;
- instructions: ``query_id: Utf8, instruction: Utf8``
- top_ranked: ``query_id: Utf8, doc_ids: List(Utf8)``
- qrel_diff: ``query_id: Utf8 (base id, no suffix), doc_ids: List(Utf8)``
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from ifir_pipeline.errors import DataFormatError
from ifir_pipeline.loaders._read import check_qrels_refs, read_jsonl, require_str, resolve_uri
from ifir_pipeline.loaders.beir import read_corpus_jsonl, read_qrels_tsv, read_queries_jsonl

LIST_SCHEMA = {"query_id": pl.Utf8, "doc_ids": pl.List(pl.Utf8)}

# FollowIR's real sets, as mteb scores them; the dataset path and pinned revision come from mteb's own task
# metadata (mteb 2.26: Core17 67d8733d..., News21 c6fffeb9..., Robust04 0495a5cb...).
HUB_FOLLOWIR_TASKS = ("Core17InstructionRetrieval", "News21InstructionRetrieval", "Robust04InstructionRetrieval")


def hub_task_dataset(task_name: str) -> tuple[str, str]:
    """(hub path, pinned revision) of a FollowIR task, read from mteb's task metadata."""
    if task_name not in HUB_FOLLOWIR_TASKS:
        raise ValueError(f"unknown FollowIR task {task_name!r}; known: {list(HUB_FOLLOWIR_TASKS)}")
    import mteb

    meta = mteb.get_task(task_name).metadata
    return meta.dataset["path"], meta.dataset["revision"]


@dataclass(frozen=True)
class FollowIRSet:
    corpus: pl.DataFrame
    queries: pl.DataFrame
    instructions: pl.DataFrame
    qrels: pl.DataFrame
    top_ranked: pl.DataFrame
    qrel_diff: pl.DataFrame
    name: str
    revision: str
    # set for FollowIR's real sets: mteb's task name and the dataset path it reads (the hub repository, or a
    # local folder laid out like it); scoring then goes through mteb's own task class
    hub_task: str | None = None
    hub_path: str | None = None

    def query_texts(self) -> dict[str, str]:
        """Query id to the text a model reads: query + " " + instruction, as mteb builds it."""
        inst = dict(zip(self.instructions["query_id"], self.instructions["instruction"], strict=True))
        return {
            qid: f"{text} {inst[qid]}".strip()
            for qid, text in zip(self.queries["query_id"], self.queries["text"], strict=True)
        }


def _read_id_lists(path: Path, id_field: str) -> pl.DataFrame:
    qids, lists = [], []
    for line, rec in read_jsonl(path):
        qids.append(require_str(path, line, rec, id_field))
        ids = rec.get("corpus-ids")
        if not isinstance(ids, list) or not all(isinstance(x, (str, int)) for x in ids):
            raise DataFormatError(str(path), line, "corpus-ids", "expected a list of document ids")
        lists.append([str(x) for x in ids])
    return pl.DataFrame({"query_id": qids, "doc_ids": lists}, schema=LIST_SCHEMA)


def _validate(root: Path, s: FollowIRSet, qrel_lines: list[int]) -> None:
    qids = set(s.queries["query_id"])
    dids = set(s.corpus["doc_id"])
    check_qrels_refs(root / "qrels" / "test.tsv", s.qrels, qids, dids, qrel_lines)
    for qid in qids:
        if not (qid.endswith("-og") or qid.endswith("-changed")):
            raise DataFormatError(
                str(root / "queries.jsonl"), f"record {qid!r}", "_id", "ids must end in -og or -changed"
            )
    missing = qids - set(s.instructions["query_id"])
    if missing:
        raise DataFormatError(
            str(root / "instruction.jsonl"), None, "query-id", f"no instruction for {sorted(missing)[:5]}"
        )
    for i, (qid, ids) in enumerate(zip(s.top_ranked["query_id"], s.top_ranked["doc_ids"], strict=True), start=1):
        unknown = [d for d in ids if d not in dids]
        if unknown:
            raise DataFormatError(str(root / "top_ranked.jsonl"), i, "corpus-ids", f"unknown documents {unknown[:5]}")
        if qid not in qids:
            raise DataFormatError(str(root / "top_ranked.jsonl"), i, "query-id", f"unknown query {qid!r}")
    base_ids = {q.rsplit("-", 1)[0] for q in qids}
    for i, (qid, ids) in enumerate(zip(s.qrel_diff["query_id"], s.qrel_diff["doc_ids"], strict=True), start=1):
        if qid not in base_ids:
            raise DataFormatError(str(root / "qrel_diff.jsonl"), i, "query-id", f"unknown query {qid!r}")
        unknown = [d for d in ids if d not in dids]
        if unknown:
            raise DataFormatError(str(root / "qrel_diff.jsonl"), i, "corpus-ids", f"unknown documents {unknown[:5]}")


def load_followir_local(folder: str | Path, name: str | None = None) -> FollowIRSet:
    """Load a FollowIR-format folder and check every cross-reference."""
    from ifir_pipeline.hashing import folder_fingerprint

    root = resolve_uri(folder)
    files = [
        "corpus.jsonl",
        "queries.jsonl",
        "instruction.jsonl",
        "qrels/test.tsv",
        "top_ranked.jsonl",
        "qrel_diff.jsonl",
    ]
    for required in files:
        if not (root / required).exists():
            raise DataFormatError(str(root / required), None, None, "missing config of the FollowIR layout")
    instructions = []
    for line, rec in read_jsonl(root / "instruction.jsonl"):
        instructions.append(
            (
                require_str(root / "instruction.jsonl", line, rec, "query-id"),
                require_str(root / "instruction.jsonl", line, rec, "instruction"),
            )
        )
    qrels, qrel_lines = read_qrels_tsv(root / "qrels" / "test.tsv")
    s = FollowIRSet(
        corpus=read_corpus_jsonl(root / "corpus.jsonl", allow_empty=True),
        queries=read_queries_jsonl(root / "queries.jsonl"),
        instructions=pl.DataFrame(instructions, schema={"query_id": pl.Utf8, "instruction": pl.Utf8}, orient="row"),
        qrels=qrels,
        top_ranked=_read_id_lists(root / "top_ranked.jsonl", "query-id"),
        qrel_diff=_read_id_lists(root / "qrel_diff.jsonl", "query-id"),
        name=name or root.name,
        revision=folder_fingerprint(root, files),
    )
    _validate(root, s, qrel_lines)
    return s


def mteb_followir_task(task_name: str, dataset_path: str | None = None):
    """mteb's own task class for a FollowIR set, reading ``dataset_path`` (a local folder laid out like the
    hub repository) instead of the hub when given. A subclass with its own metadata: mteb's class is untouched.
    """
    import mteb

    if task_name not in HUB_FOLLOWIR_TASKS:
        raise ValueError(f"unknown FollowIR task {task_name!r}; known: {list(HUB_FOLLOWIR_TASKS)}")
    cls = type(mteb.get_task(task_name))
    if dataset_path is None:
        return cls()
    meta = cls.metadata.model_copy(update={"dataset": {**cls.metadata.dataset, "path": str(dataset_path)}})
    return type(cls.__name__, (cls,), {"metadata": meta})()


def load_followir_hub(task_name: str, dataset_path: str | None = None) -> FollowIRSet:
    """One of FollowIR's real sets, loaded by mteb's own task (its loader, its configs, the revision it pins):
    ``dataset_path`` is the hub repository by default, or a local folder laid out like it."""
    from datasets import load_dataset

    task = mteb_followir_task(task_name, dataset_path)
    task.load_data()
    split = task.dataset["default"]["test"]
    corpus, queries = split["corpus"], split["queries"]
    path, revision = task.metadata.dataset["path"], task.metadata.dataset["revision"]
    diff = load_dataset(path, "qrel_diff", split="qrel_diff", revision=revision)
    titles = corpus["title"] if "title" in corpus.column_names else [""] * len(corpus)
    qrels = [(q, d, int(v)) for q, docs in split["relevant_docs"].items() for d, v in docs.items()]
    top = split["top_ranked"] or {}
    return FollowIRSet(
        corpus=pl.DataFrame(
            {"doc_id": corpus["id"], "title": [t or "" for t in titles], "text": corpus["text"]},
            schema={"doc_id": pl.Utf8, "title": pl.Utf8, "text": pl.Utf8},
        ),
        queries=pl.DataFrame(
            {"query_id": queries["id"], "text": queries["text"]}, schema={"query_id": pl.Utf8, "text": pl.Utf8}
        ),
        instructions=pl.DataFrame(
            {"query_id": queries["id"], "instruction": queries["instruction"]},
            schema={"query_id": pl.Utf8, "instruction": pl.Utf8},
        ),
        qrels=pl.DataFrame(qrels, schema={"query_id": pl.Utf8, "doc_id": pl.Utf8, "score": pl.Int32}, orient="row"),
        top_ranked=pl.DataFrame(
            {"query_id": list(top), "doc_ids": [list(map(str, v)) for v in top.values()]}, schema=LIST_SCHEMA
        ),
        qrel_diff=pl.DataFrame(
            {
                "query_id": [str(x) for x in diff["query-id"]],
                "doc_ids": [list(map(str, v)) for v in diff["corpus-ids"]],
            },
            schema=LIST_SCHEMA,
        ),
        name=task_name,
        revision=str(revision),
        hub_task=task_name,
        hub_path=str(path),
    )
