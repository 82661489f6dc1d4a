"""Build the configured synthesis backend."""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from ifir_pipeline.synthesis.base import SynthesisBackend


def make_backend(settings, documents: pl.DataFrame, store, log: Callable[[str], None]) -> SynthesisBackend:
    if settings.backend == "offline":
        from ifir_pipeline.synthesis.offline import OfflineBackend
        from ifir_pipeline.text_aspects import PhraseStats

        return OfflineBackend(
            PhraseStats.fit(f"{t} {x}" for t, x in zip(documents["title"], documents["text"], strict=True))
        )
    if settings.backend == "anthropic":
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
    if settings.backend == "local":
        from ifir_pipeline.synthesis.local_backend import LocalLMBackend

        if not settings.local_model_path:
            raise ValueError("synthesis backend 'local' needs local_model_path")
        return LocalLMBackend(settings.local_model_path)
    raise ValueError(f"unknown synthesis backend {settings.backend!r}; use offline, anthropic or local")
