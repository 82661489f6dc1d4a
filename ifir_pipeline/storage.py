"""Atomic writes: a failed run never leaves a half-written artifact or loses the previous one.

Everything is written to a temporary sibling first and then renamed into place; ``os.replace`` is
atomic on POSIX for files, and folders are swapped with two renames.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _tmp_sibling(path: Path, suffix: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f"{suffix}.tmp", dir=path.parent)
    os.close(fd)
    os.chmod(name, 0o666 & ~_umask())  # mkstemp makes 0600; the published file gets the usual permissions
    return Path(name)


def _atomic_write(path: str | Path, write: Callable[[Path], object], suffix: str = "") -> Path:
    """``write`` a temporary sibling, then rename it over ``path``; on any error the sibling is removed."""
    path = Path(path)
    tmp = _tmp_sibling(path, suffix)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    return _atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str))


def atomic_write_parquet(path: str | Path, frame: pl.DataFrame) -> Path:
    return _atomic_write(path, frame.write_parquet, ".parquet")


def atomic_write_npy(path: str | Path, array: Any) -> Path:
    """``np.save`` through a temporary sibling, so a reader (or a memory map) never sees half an array."""
    import numpy as np

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=False)

    return _atomic_write(path, write, ".npy")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def clean_stale_staging(path: Path) -> list[Path]:
    """Remove staging and swap folders that a killed writer left beside ``path`` (its pid is in the name)."""
    removed = []
    for p in path.parent.glob(f".{path.name}.*"):
        if not p.name.endswith((".staging", ".old")):
            continue
        parts = p.name[len(path.name) + 2 :].split(".")
        if parts and parts[0].isdigit() and not _pid_alive(int(parts[0])):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


@contextlib.contextmanager
def _swap_lock(path: Path) -> Iterator[None]:
    """An exclusive lock for the two renames that publish a folder: concurrent writers take turns."""
    import fcntl

    with open(path.parent / f".{path.name}.lock", "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary folder; on success it replaces ``path``, on error it is discarded.

    The previous folder at ``path`` stays readable until the new one is complete. Writers that publish the
    same ``path`` at once take turns for the swap (the last one wins, whole); staging folders left by a killed
    writer are removed by the next one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_staging(path)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".staging", dir=path.parent))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    with _swap_lock(path):
        old = None
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".old", dir=path.parent))
            os.replace(path, old / "previous")
        os.replace(staging, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
