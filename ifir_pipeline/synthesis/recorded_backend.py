"""The ``recorded`` writer: replays recorded LLM answers; pairs with no recording go to a fallback writer.

A recorded "not achievable" is a failed row (``not_achievable``, which the quality gate rejects as
``swap_not_achievable``) that keeps the LLM's I and its rationale. Every row says who wrote it (``writer``:
``recorded`` or the fallback's name), so the metadata counts both.
"""

from __future__ import annotations

from pathlib import Path

from ifir_pipeline.synthesis.base import InversionRequest, InversionResult, SynthesisBackend
from ifir_pipeline.synthesis.recording import RecordedAnswer, RecordingIndex, read_recording, recording_fingerprint


class RecordedBackend:
    name = "recorded"

    def __init__(self, path: str | Path, fallback: SynthesisBackend) -> None:
        self.path = Path(path)
        self.index = RecordingIndex(read_recording(self.path))
        self.fallback = fallback
        # the cache key of a row includes this: another recording (or fallback) is another writer
        self.model = f"recorded-{recording_fingerprint(self.path)}+{fallback.model}"
        self.lookups: dict[str, int] = {}

    def invert(self, requests: list[InversionRequest]) -> list[InversionResult]:
        out: list[InversionResult | None] = [None] * len(requests)
        rest: list[int] = []
        for i, r in enumerate(requests):
            ans, how = self.index.lookup(r.example_id, r.negative_id, r.query, r.instruction, r.positive, r.negative)
            self.lookups[how] = self.lookups.get(how, 0) + 1
            if ans is None:
                rest.append(i)
            else:
                out[i] = _from_recording(r.pair_id, ans, r.instruction)
        if rest:
            for i, res in zip(rest, self.fallback.invert([requests[i] for i in rest]), strict=True):
                res.writer = self.fallback.name
                out[i] = res
        return [r for r in out if r is not None]


def _from_recording(pair_id: str, ans: RecordedAnswer, source_instruction: str | None) -> InversionResult:
    res = InversionResult(
        pair_id=pair_id,
        instruction_og=source_instruction or ans.instruction or None,
        instruction_reversed=ans.instruction_reversed or None,
        og_generated=not source_instruction,
        style=ans.style or None,
        rationale=ans.rationale,
        swap_achievable=ans.swap_achievable,
        model=ans.model or "recorded",
        writer="recorded",
    )
    if ans.swap_achievable:
        res.status = "ok"
    else:
        res.failure_reason = "not_achievable"
    return res
