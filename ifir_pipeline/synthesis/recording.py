"""Recorded writer answers: one JSONL(.gz) row per (query, d+, d-) triple, replayed without a key.

A team records once (the anthropic backend exports its answers with ``SynthesisSettings.record_to`` or
``ifir record export``) and replays everywhere. The package ships one recording: answers written for this
project by an LLM under the rules of ``polarity-reversal-v1`` (see ``data/bundled/recordings/README.md``).

Matching: a pair is found by the pool's ids ``(example_id, negative_id)`` and accepted only when the text
hashes agree (the query, and the documents' normalized prefixes as the writer saw them: a recording may hold
documents cut to about 900 characters). Rows without ids (or whose ids moved) are found by the same hashes.

Row fields (:data:`RECORDING_FIELDS`): ``id, source, example_id, positive_id, negative_id, query,
instruction_given, positive, negative, query_hash, positive_hash, positive_chars, negative_hash,
negative_chars, swap_achievable, instruction, instruction_reversed, style, rationale, model, prompt_version,
annotator``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ifir_pipeline.errors import DataFormatError
from ifir_pipeline.hashing import normalize_text, text_hash
from ifir_pipeline.synthesis.prompt import POLARITY_REVERSAL_PROMPT_VERSION

RECORDING_FORMAT = "ifir-recording-v1"
_ELLIPSES = ("...", "…", "â¦")


@dataclass(frozen=True)
class RecordedAnswer:
    id: str
    source: str
    example_id: str | None
    positive_id: str | None
    negative_id: str | None
    query: str
    instruction_given: str | None
    positive: str
    negative: str
    query_hash: str
    positive_hash: str
    positive_chars: int
    negative_hash: str
    negative_chars: int
    swap_achievable: bool
    instruction: str
    instruction_reversed: str
    style: str
    rationale: str
    model: str
    prompt_version: str
    annotator: str | None = None


RECORDING_FIELDS = tuple(RecordedAnswer.__dataclass_fields__)
_REQUIRED_STR = ("id", "source", "query", "positive", "negative", "prompt_version")
_OPTIONAL_STR = ("example_id", "positive_id", "negative_id", "instruction_given", "annotator")
_TEXT_STR = ("instruction", "instruction_reversed", "style", "rationale", "model")


def bundled_recording_path() -> Path:
    return (
        Path(str(resources.files("ifir_pipeline")))
        / "data"
        / "bundled"
        / "recordings"
        / f"{POLARITY_REVERSAL_PROMPT_VERSION}.jsonl.gz"
    )


def resolve_recording_path(path: str | None) -> Path | None:
    """``"bundled"`` (the default) is the packaged recording, ``""``/None none, anything else a file."""
    if path is None or path == "":
        return None
    if path == "bundled":
        return bundled_recording_path()
    return Path(path)


def prefix_signature(text: str) -> tuple[str, int]:
    """(hash, length) of the normalized text a writer saw, trailing ellipsis of a cut document removed."""
    t = text.rstrip()
    for e in _ELLIPSES:
        if t.endswith(e):
            t = t[: -len(e)].rstrip()
    norm = normalize_text(t)
    return text_hash(norm), len(norm)


def prefix_matches(text: str, digest: str, chars: int) -> bool:
    """Does ``text`` begin with what was recorded? (normalized, so punctuation and spacing do not matter)"""
    norm = normalize_text(text)
    return len(norm) >= chars and text_hash(norm[:chars]) == digest


def make_answer(
    *,
    id: str,
    source: str,
    query: str,
    positive: str,
    negative: str,
    swap_achievable: bool,
    instruction: str,
    instruction_reversed: str,
    style: str = "",
    rationale: str = "",
    model: str = "",
    prompt_version: str = POLARITY_REVERSAL_PROMPT_VERSION,
    example_id: str | None = None,
    positive_id: str | None = None,
    negative_id: str | None = None,
    instruction_given: str | None = None,
    annotator: str | None = None,
) -> RecordedAnswer:
    """A row with its hashes computed from the texts as given."""
    ph, pc = prefix_signature(positive)
    nh, nc = prefix_signature(negative)
    return RecordedAnswer(
        id=id,
        source=source,
        example_id=example_id,
        positive_id=positive_id,
        negative_id=negative_id,
        query=query,
        instruction_given=instruction_given,
        positive=positive,
        negative=negative,
        query_hash=text_hash(query),
        positive_hash=ph,
        positive_chars=pc,
        negative_hash=nh,
        negative_chars=nc,
        swap_achievable=bool(swap_achievable),
        instruction=instruction or "",
        instruction_reversed=instruction_reversed or "",
        style=style or "",
        rationale=rationale or "",
        model=model or "",
        prompt_version=prompt_version,
        annotator=annotator,
    )


def _open_text(path: Path, mode: str):
    return gzip.open(path, mode + "t", encoding="utf-8") if path.suffix == ".gz" else open(path, mode, encoding="utf-8")


def _row(path: Path, line_no: int, raw: dict[str, Any]) -> RecordedAnswer:
    def fail(field: str, problem: str) -> DataFormatError:
        return DataFormatError(str(path), line_no, field, problem)

    for f in _REQUIRED_STR:
        if not isinstance(raw.get(f), str) or not raw[f].strip():
            raise fail(f, "missing or empty (a string is required)")
    for f in _OPTIONAL_STR:
        if raw.get(f) is not None and not isinstance(raw[f], str):
            raise fail(f, f"must be a string or null, got {type(raw[f]).__name__}")
    for f in _TEXT_STR:
        if raw.get(f) is not None and not isinstance(raw[f], str):
            raise fail(f, f"must be a string, got {type(raw[f]).__name__}")
    if not isinstance(raw.get("swap_achievable"), bool):
        raise fail("swap_achievable", "must be true or false")
    if raw["swap_achievable"]:
        for f in ("instruction", "instruction_reversed"):
            if not (raw.get(f) or "").strip():
                raise fail(f, "an achievable swap needs both instructions")
    computed = make_answer(**{k: raw.get(k) for k in RECORDING_FIELDS if not k.endswith(("_hash", "_chars"))})
    for f in ("query_hash", "positive_hash", "negative_hash"):
        if f in raw and raw[f] != getattr(computed, f):
            raise fail(f, f"does not match the row's text (stored {raw[f]!r}, computed {getattr(computed, f)!r})")
    return computed


def read_recording(path: str | Path) -> list[RecordedAnswer]:
    """Every row of a recording, strictly: a bad row names the file, the line and the field."""
    p = Path(path)
    if not p.exists():
        raise DataFormatError(str(p), None, None, "no such recording file")
    rows: list[RecordedAnswer] = []
    seen: set[str] = set()
    try:
        with _open_text(p, "r") as fh:
            for line_no, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    raw = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataFormatError(str(p), line_no, None, f"not valid JSON ({exc.msg})") from None
                if not isinstance(raw, dict):
                    raise DataFormatError(str(p), line_no, None, "each line must be a JSON object")
                row = _row(p, line_no, raw)
                if row.id in seen:
                    raise DataFormatError(str(p), line_no, "id", f"duplicate id {row.id!r}")
                seen.add(row.id)
                rows.append(row)
    except (EOFError, gzip.BadGzipFile, UnicodeDecodeError) as exc:
        raise DataFormatError(str(p), None, None, f"unreadable recording ({type(exc).__name__}: {exc})") from None
    return rows


def write_recording(path: str | Path, rows: list[RecordedAnswer]) -> Path:
    """Write atomically (temporary sibling, then rename); ``.gz`` compresses reproducibly."""
    from ifir_pipeline.storage import atomic_write_bytes

    p = Path(path)
    blob = "".join(json.dumps(asdict(r), ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
    return atomic_write_bytes(p, gzip.compress(blob, mtime=0) if p.suffix == ".gz" else blob)


def recording_fingerprint(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


class RecordingIndex:
    """Lookup of recorded answers by pool ids (checked by hashes), then by text hashes alone."""

    def __init__(self, rows: list[RecordedAnswer], prompt_version: str = POLARITY_REVERSAL_PROMPT_VERSION):
        self.rows = [r for r in rows if r.prompt_version == prompt_version]
        self.other_prompt_versions = len(rows) - len(self.rows)
        self._by_ids: dict[tuple[str, str], list[RecordedAnswer]] = {}
        self._by_example: dict[str, list[RecordedAnswer]] = {}
        self._by_query: dict[str, list[RecordedAnswer]] = {}
        for r in self.rows:
            if r.example_id and r.negative_id:
                self._by_ids.setdefault((r.example_id, r.negative_id), []).append(r)
            if r.example_id:
                self._by_example.setdefault(r.example_id, []).append(r)
            self._by_query.setdefault(r.query_hash, []).append(r)

    def __len__(self) -> int:
        return len(self.rows)

    def candidates(self, example_id: str | None, query_hash: str) -> list[RecordedAnswer]:
        """Rows that may belong to this example: same ids, or same query text (rows recorded without ids)."""
        out = [r for r in self._by_query.get(query_hash, ()) if r.example_id in (None, example_id)]
        if example_id:
            out += [r for r in self._by_example.get(example_id, ()) if r not in out]
        return out

    @staticmethod
    def _texts_match(r: RecordedAnswer, query: str, instruction: str | None, positive: str, negative: str) -> bool:
        return (
            r.query_hash == text_hash(query)
            and normalize_text(r.instruction_given or "") == normalize_text(instruction or "")
            and prefix_matches(positive, r.positive_hash, r.positive_chars)
            and prefix_matches(negative, r.negative_hash, r.negative_chars)
        )

    def lookup(
        self,
        example_id: str | None,
        negative_id: str | None,
        query: str,
        instruction: str | None,
        positive: str,
        negative: str,
    ) -> tuple[RecordedAnswer | None, str]:
        """``(answer, how)``: how is ``ids``, ``text``, ``ids_text_mismatch`` (ids found, texts changed: not
        used) or ``none``."""
        mismatch = False
        if example_id and negative_id:
            for r in self._by_ids.get((example_id, negative_id), ()):
                if self._texts_match(r, query, instruction, positive, negative):
                    return r, "ids"
                mismatch = True
        for r in self._by_query.get(text_hash(query), ()):
            if self._texts_match(r, query, instruction, positive, negative):
                return r, "text"
        return None, "ids_text_mismatch" if mismatch else "none"


def import_labelled_rows(
    path: str | Path, model: str, annotator: str | None = None, prompt_version: str = POLARITY_REVERSAL_PROMPT_VERSION
) -> list[RecordedAnswer]:
    """Rows of a labelled JSONL file (``id, source, query, positive, negative, swap_achievable, instruction,
    instruction_reversed``; optional ``example_id, positive_id, negative_id, style, rationale, annotator``)
    as recorded answers, hashes computed from the texts. ``annotator`` fills rows that name none."""
    from ifir_pipeline.loaders._read import read_jsonl

    p = Path(path)
    out = []
    for line_no, raw in read_jsonl(p):
        raw = dict(raw)
        raw.setdefault("model", model)
        raw.setdefault("prompt_version", prompt_version)
        if raw.get("annotator") is None:
            raw["annotator"] = annotator
        out.append(_row(p, line_no, raw))
    return out


def export_recording(frame, inputs, path: str | Path, writers: tuple[str, ...] = ("anthropic", "local")) -> Path:
    """Add the live writer's answers of a synthesis frame to the recording at ``path`` (created if missing;
    rows with the same id are replaced). Only real answers are exported: achievable swaps and the LLM's
    "not achievable" verdicts, never transport or authentication failures."""
    import polars as pl

    texts = inputs.select("pair_id", "instruction", "positive_text", "negative_text")
    sub = frame.join(texts, on="pair_id", how="left").filter(
        pl.col("writer").is_in(list(writers))
        & ((pl.col("status") == "ok") | (pl.col("failure_reason") == "not_achievable"))
    )
    fresh = [
        make_answer(
            id=r["pair_id"],
            source=r["source"],
            example_id=r["example_id"],
            positive_id=r["positive_id"],
            negative_id=r["negative_id"],
            query=r["query"],
            instruction_given=r["instruction"],
            positive=r["positive_text"],
            negative=r["negative_text"],
            swap_achievable=r["status"] == "ok",
            instruction=r["instruction_og"] or "",
            instruction_reversed=r["instruction_reversed"] or "",
            style=r["style"] or "",
            rationale=r["rationale"] or "",
            model=r["model"],
            prompt_version=r["prompt_version"],
        )
        for r in sub.iter_rows(named=True)
    ]
    p = Path(path)
    merged = {r.id: r for r in (read_recording(p) if p.exists() else [])}
    merged.update({r.id: r for r in fresh})
    return write_recording(p, list(merged.values()))
