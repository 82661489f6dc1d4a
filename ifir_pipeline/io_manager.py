"""An I/O manager that writes every artifact atomically under one root (local by default).

Layout: ``<root>/<asset>/<partition path>/`` holding ``data.parquet`` (a polars frame), or one
``<name>.parquet`` per frame plus ``meta.json`` (a dict of frames and JSON values), or ``record.json``
(a JSON-able dict). Multi-partition keys become nested folders (``2000/dual_view``). A failed write
leaves the previous materialization in place.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
from dagster import ConfigurableIOManager, InputContext, MultiPartitionKey, OutputContext

from ifir_pipeline.errors import DataFormatError
from ifir_pipeline.storage import atomic_directory


def partition_path(partition_key: str | MultiPartitionKey | None) -> Path:
    if partition_key is None:
        return Path("_all")
    if isinstance(partition_key, MultiPartitionKey):
        kv = partition_key.keys_by_dimension
        return Path(kv["budget"]) / kv["recipe"]
    # a multi-partition key as a string: dimensions sorted by name, "budget|recipe"
    if "|" in str(partition_key):
        return Path(*str(partition_key).split("|"))
    return Path(str(partition_key))


def artifact_dir(root: str | Path, asset: str, partition_key: Any = None) -> Path:
    return Path(root) / asset / partition_path(partition_key)


def write_artifact(folder: Path, obj: Any) -> None:
    with atomic_directory(folder) as staging:
        if isinstance(obj, pl.DataFrame):
            obj.write_parquet(staging / "data.parquet")
        elif isinstance(obj, dict) and any(isinstance(v, pl.DataFrame) for v in obj.values()):
            meta = {}
            for k, v in obj.items():
                if isinstance(v, pl.DataFrame):
                    v.write_parquet(staging / f"{k}.parquet")
                else:
                    meta[k] = v
            (staging / "meta.json").write_text(json.dumps(meta, indent=2, default=str))
        elif isinstance(obj, dict):
            (staging / "record.json").write_text(json.dumps(obj, indent=2, default=str))
        else:
            raise TypeError(f"cannot store {type(obj).__name__}: return a polars DataFrame or a dict")


def _read_parquet(path: Path, what: str) -> pl.DataFrame:
    try:
        return pl.read_parquet(path)
    except Exception as exc:  # polars raises ComputeError/OSError/... for truncated or foreign files
        raise DataFormatError(
            str(path),
            None,
            None,
            f"the stored materialization of {what} is unreadable ({type(exc).__name__}: "
            f"{str(exc)[:200]}); re-materialize {what}",
        ) from None


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataFormatError(
            str(path), None, None, f"the stored materialization of {what} is unreadable ({exc}); re-materialize {what}"
        ) from None


def read_artifact(folder: Path, what: str | None = None) -> Any:
    """The stored value in ``folder``; ``what`` names the asset (and partition) in errors."""
    folder = Path(folder)
    what = what or f"asset {folder.parent.name}/{folder.name}"
    if (folder / "data.parquet").exists():
        return _read_parquet(folder / "data.parquet", what)
    if (folder / "record.json").exists():
        return _read_json(folder / "record.json", what)
    if (folder / "meta.json").exists():
        out: dict[str, Any] = _read_json(folder / "meta.json", what)
        for p in sorted(folder.glob("*.parquet")):
            out[p.stem] = _read_parquet(p, what)
        return out
    raise FileNotFoundError(f"no materialization stored at {folder}")


class ArtifactIOManager(ConfigurableIOManager):
    """Atomic storage of frames, frame bundles and JSON records: local files, mirrored to S3 when
    ``s3_bucket`` is set (the local folder is then a cache; a missing one is fetched from S3)."""

    root: str
    s3_bucket: str | None = None
    s3_prefix: str = "ifir/assets"
    s3_endpoint_url: str | None = None
    s3_max_attempts: int = 5

    def _dir(self, asset: str, partition_key: Any) -> Path:
        return artifact_dir(self.root, asset, partition_key)

    def _s3_key(self, folder: Path) -> str:
        return f"{self.s3_prefix.rstrip('/')}/{folder.relative_to(self.root).as_posix()}"

    def _client(self):
        from ifir_pipeline.s3_storage import s3_client

        return s3_client(self.s3_endpoint_url, max_attempts=self.s3_max_attempts)

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        key = context.partition_key if context.has_partition_key else None
        folder = self._dir(context.asset_key.path[-1], key)
        write_artifact(folder, obj)
        meta: dict[str, Any] = {"path": str(folder)}
        if self.s3_bucket:
            from ifir_pipeline.s3_storage import upload_folder

            s3_key = self._s3_key(folder)
            version = upload_folder(self._client(), folder, self.s3_bucket, s3_key)
            meta["uri"] = f"s3://{self.s3_bucket}/{s3_key}/{version}"
        context.add_output_metadata(meta)

    def _read(self, asset: str, partition_key: Any) -> Any:
        folder = self._dir(asset, partition_key)
        if self.s3_bucket and not folder.exists():
            from ifir_pipeline.s3_storage import download_current

            download_current(self._client(), self.s3_bucket, self._s3_key(folder), folder)
        label = f"asset {asset!r}" + (f" partition {partition_key!s}" if partition_key is not None else "")
        return read_artifact(folder, label)

    def load_input(self, context: InputContext) -> Any:
        asset = context.asset_key.path[-1]
        if not context.has_asset_partitions:
            return self._read(asset, None)
        keys = context.asset_partition_keys
        if len(keys) == 1:
            return self._read(asset, keys[0])
        return {k: self._read(asset, k) for k in keys}
