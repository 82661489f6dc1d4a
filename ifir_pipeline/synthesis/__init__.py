"""Polarity-reversal synthesis: one interface, several backends (offline, anthropic, local)."""

from ifir_pipeline.synthesis.base import SYNTHESIS_SCHEMA, InversionRequest, InversionResult, SynthesisBackend

__all__ = ["SYNTHESIS_SCHEMA", "InversionRequest", "InversionResult", "SynthesisBackend"]
