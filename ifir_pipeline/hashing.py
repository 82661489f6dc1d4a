"""Content hashes: normalized text hashes for leakage and dedup, fingerprints for caches and lineage."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import polars as pl

_WS = re.compile(r"\s+")
_PUNCT = re.compile(r"[^\w\s]")
_PUNCT_OK = re.compile(r"[\w\s]")


# ASCII fast path of normalize_text: every ASCII character that is neither a word character nor whitespace
_ASCII_PUNCT = str.maketrans({c: " " for c in map(chr, range(128)) if not _PUNCT_OK.match(c)})


def normalize_text(text: str) -> str:
    """Lower-case, NFKC, punctuation dropped, whitespace collapsed: equal texts up to formatting match."""
    if text.isascii():  # NFKC is the identity on ASCII; translate + split is ~5x faster than the regexes
        return " ".join(text.lower().translate(_ASCII_PUNCT).split())
    text = unicodedata.normalize("NFKC", text).lower()
    return _WS.sub(" ", _PUNCT.sub(" ", text)).strip()


def text_hash(text: str) -> str:
    return hashlib.blake2b(normalize_text(text).encode("utf-8"), digest_size=12).hexdigest()


def exact_hash(text: str) -> str:
    """A hash of the text exactly as a model sees it: the key for cached embeddings."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=12).hexdigest()


def text_hash_expr(column: str) -> pl.Expr:
    """The same normalized hash as :func:`text_hash`, as a polars expression."""
    return pl.col(column).map_elements(text_hash, return_dtype=pl.Utf8)


def stable_hash(obj: Any) -> str:
    blob = json.dumps(obj, sort_keys=True, default=str, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


def frame_hash(frame: pl.DataFrame) -> str:
    """A content hash of a frame, stable across runs (row order matters)."""
    digest = hashlib.sha256()
    for value in frame.hash_rows(seed=0, seed_1=1, seed_2=2, seed_3=3):
        digest.update(int(value).to_bytes(8, "little"))
    digest.update(",".join(frame.columns).encode())
    return digest.hexdigest()[:16]


def folder_fingerprint(root: Path, files: Iterable[str]) -> str:
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode())
        digest.update((root / name).read_bytes())
    return digest.hexdigest()[:16]
