"""Build the configured synthesis backend."""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from ifir_pipeline.synthesis.base import SynthesisBackend


def make_backend(
    settings, documents: pl.DataFrame, store, log: Callable[[str], None], name: str | None = None
) -> SynthesisBackend:
    """The writer ``name`` (default: ``settings.backend``) as configured in ``settings``."""
    name = name or settings.backend
    if name == "recorded":
        from ifir_pipeline.synthesis.recorded_backend import RecordedBackend
        from ifir_pipeline.synthesis.recording import resolve_recording_path

        if settings.fallback == "recorded":
            raise ValueError("synthesis backend 'recorded' cannot fall back to itself; use offline, anthropic or local")
        path = resolve_recording_path(settings.recording)
        if path is None:
            raise ValueError("synthesis backend 'recorded' needs a recording (\"bundled\" or a file path)")
        return RecordedBackend(path, make_backend(settings, documents, store, log, settings.fallback))
    if name == "offline":
        from ifir_pipeline.synthesis.offline import OfflineBackend
        from ifir_pipeline.text_aspects import PhraseStats

        return OfflineBackend(
            PhraseStats.fit(f"{t} {x}" for t, x in zip(documents["title"], documents["text"], strict=True))
        )
    if name == "anthropic":
        from ifir_pipeline.synthesis.anthropic_backend import AnthropicBackend, Pricing
        from ifir_pipeline.synthesis.cache import ResponseCache

        if not settings.api_key:
            raise ValueError("synthesis backend 'anthropic' needs ANTHROPIC_API_KEY in the environment")
        return AnthropicBackend(
            api_key=settings.api_key,
            model=settings.model,
            base_url=settings.base_url,
            max_concurrency=settings.max_concurrency,
            max_cost_usd=settings.max_cost_usd,
            batch_mode=settings.batch_mode,
            poll_interval_s=settings.poll_interval_s,
            pricing=Pricing(input_per_mtok=settings.input_usd_per_mtok, output_per_mtok=settings.output_usd_per_mtok),
            cache=ResponseCache(store.cache_dir("synthesis") / "anthropic.sqlite"),
            log=log,
        )
    if name == "local":
        from ifir_pipeline.synthesis.local_backend import LocalLMBackend

        if not settings.local_model_path:
            raise ValueError("synthesis backend 'local' needs local_model_path")
        return LocalLMBackend(settings.local_model_path)
    raise ValueError(f"unknown synthesis backend {name!r}; use recorded, offline, anthropic or local")
