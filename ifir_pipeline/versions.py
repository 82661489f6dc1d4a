"""What each asset's result depends on, as Dagster code versions and data versions.

Code version = the asset's logic version (bumped by hand when code changes results) + a hash of the settings
that change its result (resources, the encoder, the writer and its recording, input files). Settings come from
the resources the definitions are built with (``build_definitions``, the CLI's flags, environment variables):
change one and exactly the assets that read it are stale. Launchpad run config (``mined_negatives``' mining
knobs) is not part of it; Dagster cannot see it before a run.

Data version = a content hash of what the asset produced (:func:`content_version`): downstream partitions are
stale only when an upstream result really changed, not because it was re-materialized.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import polars as pl

from ifir_pipeline.hashing import frame_hash, stable_hash
from ifir_pipeline.synthesis.prompt import POLARITY_REVERSAL_PROMPT_VERSION

# logic versions: bump when a code change changes an asset's result
POOL_CODE = "pool-v2"
MINING_CODE = "mining-v3"
SYNTHESIS_CODE = f"{POLARITY_REVERSAL_PROMPT_VERSION}+runner-v2"
QUALITY_CODE = "quality-v2"
TRAINING_CODE = "training-v2"
SCORING_CODE = "scoring-v2"
REPORT_CODE = "report-v2"

# synthesis columns that describe the pairs (cost, token and cache columns change between identical runs)
SYNTHESIS_CONTENT = (
    "pair_id",
    "negative_id",
    "instruction_og",
    "instruction_reversed",
    "status",
    "failure_reason",
    "writer",
    "model",
    "control_instruction_og",
    "control_instruction_reversed",
)


# synthesis settings that change how, not what, is written
SYNTHESIS_OPERATIONAL = ("max_concurrency", "poll_interval_s", "max_cost_usd", "base_url", "record_to")


def _settings(resource: Any, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """A resource's fields (secrets dropped), as plain values."""
    fields = resource.model_dump() if hasattr(resource, "model_dump") else dict(vars(resource))
    return {k: v for k, v in sorted(fields.items()) if k not in drop and not k.endswith("api_key")}


def file_fingerprint(path: str | None) -> Any:
    """Size and modification time of a local file or folder's files; an ``s3://`` URI stands for itself."""
    if not path or str(path).startswith("s3://"):
        return path
    p = Path(path)
    if not p.exists():
        return [str(p), "missing"]
    files = [p] if p.is_file() else sorted(x for x in p.rglob("*") if x.is_file())
    return [str(p), [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files]]


def _specs(specs) -> list[Any]:
    return [
        {**{k: v for k, v in vars(s).items()}, "files": [file_fingerprint(s.path), file_fingerprint(s.corpus_path)]}
        for s in specs
    ]


def _sha(path: Path | None) -> str | None:
    if path is None or not Path(path).exists():
        return None
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def code_versions(resources: dict[str, Any]) -> dict[str, str]:
    """The code version of every asset for these resources."""
    from ifir_pipeline.achievability import default_model_path
    from ifir_pipeline.synthesis.recording import resolve_recording_path

    sources, encoder = resources["sources"], resources["encoder"]
    synthesis, ach = resources["synthesis"], resources["achievability"]
    quality, training, evaluation = resources["quality"], resources["training"], resources["evaluation"]
    check_file = Path(ach.model_file) if ach.model_file else default_model_path()
    verdicts = resolve_recording_path(ach.verdicts)
    recording = resolve_recording_path(synthesis.recording) if synthesis.backend == "recorded" else None
    eval_part = [_specs(sources.eval_specs()), list(evaluation.hub_followir_tasks)]
    parts = {
        "source_corpora": (POOL_CODE, [_specs(sources.train_specs()), _specs(sources.eval_specs()), sources.seed]),
        "mined_negatives": (
            MINING_CODE,
            [encoder.model, encoder.mining_max_seq_length, _settings(ach), _sha(check_file), _sha(verdicts)],
        ),
        "inverted_instructions": (
            SYNTHESIS_CODE,
            [
                _settings(
                    synthesis, drop=("max_concurrency", "poll_interval_s", "max_cost_usd", "base_url", "record_to")
                ),
                _sha(recording),
                ach.enabled,
            ],
        ),
        "quality_checked_pairs": (QUALITY_CODE, [_settings(quality, drop=("judge_max_cost_usd", "judge_base_url"))]),
        "trained_checkpoint": (TRAINING_CODE, [_settings(training), encoder.model]),
        "followir_scores": (SCORING_CODE, [_settings(evaluation), eval_part]),
        "budget_report": (REPORT_CODE, []),
    }
    return {name: f"{logic}+{stable_hash(deps)[:10]}" if deps else logic for name, (logic, deps) in parts.items()}


def content_version(value: Any) -> str:
    """A data version for an asset's value: a hash of its content, stable across identical runs."""
    if isinstance(value, pl.DataFrame):
        return frame_hash(value)
    if isinstance(value, dict):
        parts = []
        for k in sorted(value):
            v = value[k]
            parts.append([k, frame_hash(v) if isinstance(v, pl.DataFrame) else stable_hash(v)])
        return stable_hash(parts)
    return stable_hash(value)


def synthesis_version(frame: pl.DataFrame) -> str:
    return frame_hash(frame.select([c for c in SYNTHESIS_CONTENT if c in frame.columns]))


def checkpoint_version(paths: list[str]) -> str:
    """A hash of the saved weights of every checkpoint folder (the packaged encoder: its own files)."""
    digest = hashlib.sha256()
    for p in paths:
        folder = Path(p)
        for f in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
            digest.update(f.name.encode())
            digest.update(hashlib.sha256(f.read_bytes()).digest())
        if not folder.exists():
            digest.update(str(p).encode())
    return digest.hexdigest()[:16]
