"""Claude through the official anthropic SDK: async messages with a concurrency limit, or Message Batches.

Retries: the SDK's own (exponential backoff that honours ``retry-after``, on 408/409/429/5xx including 529).
Cost: every call's worst case (input estimate + ``max_tokens``) is reserved against ``max_cost_usd`` before
it is sent, so spending never passes the cap. The API key is read from the environment by the resource and
never logged or written to metadata.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from ifir_pipeline.errors import BudgetExceededError, WriterUnavailableError
from ifir_pipeline.synthesis.base import InversionRequest, InversionResult
from ifir_pipeline.synthesis.cache import ResponseCache, synthesis_cache_key
from ifir_pipeline.synthesis.prompt import (
    OUTPUT_SCHEMA,
    POLARITY_REVERSAL_SYSTEM,
    polarity_reversal_user_message,
)

logger = logging.getLogger(__name__)
DEFAULT_MODEL = "claude-sonnet-5-5"


@dataclass(frozen=True)
class Pricing:
    """US dollars per million tokens. Defaults are Sonnet-class list prices; set them for your model."""

    input_per_mtok: float = 3.0
    output_per_mtok: float = 15.0
    cache_write_multiplier: float = 1.25
    cache_read_multiplier: float = 0.1
    batch_discount: float = 0.5

    def cost(self, usage: dict[str, int], batch: bool = False) -> float:
        base = (
            usage.get("input_tokens", 0) * self.input_per_mtok
            + usage.get("cache_creation_input_tokens", 0) * self.input_per_mtok * self.cache_write_multiplier
            + usage.get("cache_read_input_tokens", 0) * self.input_per_mtok * self.cache_read_multiplier
            + usage.get("output_tokens", 0) * self.output_per_mtok
        ) / 1e6
        return base * (self.batch_discount if batch else 1.0)


SERVICE_CAUSES = {
    "api_error_401": "ANTHROPIC_API_KEY rejected (401 authentication_error)",
    "api_error_403": "ANTHROPIC_API_KEY not permitted (403 permission_error)",
    "api_error_404": "model not found (404): check SynthesisSettings.model / QualitySettings.judge_model",
    "api_error_400": "request rejected (400 invalid_request_error)",
    "transport_error": "the Messages API could not be reached or stayed overloaded after retries",
}


def raise_if_unavailable(results: list, who: str, share: float = 0.5) -> None:
    """Fail the run, naming the cause, when at least ``share`` of the calls failed for service reasons."""
    from ifir_pipeline.synthesis.cache import is_service_failure

    if not results:
        return
    failed = [r.failure_reason for r in results if is_service_failure(r.failure_reason)]
    failed = [f for f in failed if f not in ("cost_cap_reached",)]
    if len(failed) >= share * len(results):
        top = max(set(failed), key=failed.count)
        cause = SERVICE_CAUSES.get(top, top)
        raise WriterUnavailableError(
            f"{who}: {cause}; {len(failed)} of {len(results)} calls failed ({top}). Nothing was cached and the "
            "previous materialization is kept: fix the cause and rerun."
        )


def _redact(text: str) -> str:
    """Error messages never carry a key."""
    import re

    return re.sub(r"sk-ant-[A-Za-z0-9_\-]+", "sk-ant-***", text)


def usage_of(message) -> dict[str, int]:
    """Token counts of a Messages API response (prompt-cache reads and writes included)."""
    usage = getattr(message, "usage", None)
    fields = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
    return {f: int(getattr(usage, f, 0) or 0) for f in fields} if usage is not None else {}


def parse_response(message, result: InversionResult) -> InversionResult:
    """Fill ``result`` from a Messages API response; malformed output becomes a failed row with a reason."""
    result.usage = usage_of(message)
    if getattr(message, "stop_reason", None) == "refusal":
        result.failure_reason = "refusal"
        return result
    text = "".join(getattr(b, "text", "") for b in message.content if getattr(b, "type", "") == "text").strip()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        result.failure_reason = "invalid_json"
        result.rationale = text[:300]
        return result
    if not isinstance(data, dict):
        result.failure_reason = "invalid_json"
        return result
    for f in OUTPUT_SCHEMA["required"]:
        if f not in data:
            result.failure_reason = f"missing_field:{f}"
            return result
    if not isinstance(data["complementary_instruction"], str) or not isinstance(data["original_instruction"], str):
        result.failure_reason = "wrong_type:instruction"
        return result
    result.instruction_og = data["original_instruction"].strip()
    result.instruction_reversed = data["complementary_instruction"].strip()
    result.style = str(data["style"])
    result.rationale = str(data["rationale"])[:1000]
    result.swap_achievable = bool(data["swap_achievable"])
    if not result.swap_achievable:
        result.failure_reason = "not_achievable"
        return result
    result.status = "ok"
    result.failure_reason = None
    return result


class AnthropicBackend:
    name = "anthropic"

    def __init__(
        self,
        api_key: str,
        model: str = DEFAULT_MODEL,
        base_url: str | None = None,
        max_concurrency: int = 16,
        max_retries: int = 5,
        timeout_s: float = 120.0,
        max_tokens: int = 800,
        pricing: Pricing | None = None,
        max_cost_usd: float | None = None,
        cache: ResponseCache | None = None,
        batch_mode: bool = False,
        poll_interval_s: float = 30.0,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.model = model
        self._client_kwargs = {
            "api_key": api_key,
            "base_url": base_url,
            "max_retries": max_retries,
            "timeout": timeout_s,
        }
        self.max_concurrency = max_concurrency
        self.max_tokens = max_tokens
        self.pricing = pricing or Pricing()
        self.max_cost_usd = max_cost_usd
        self.cache = cache if cache is not None else ResponseCache(None)  # an empty cache is falsy (__len__)
        self.batch_mode = batch_mode
        self.poll_interval_s = poll_interval_s
        self.log = log or logger.info
        self.spent_usd = 0.0
        self._reserved = 0.0
        self.requests_sent = 0

    def _params(self, r: InversionRequest) -> dict:
        return {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "system": [{"type": "text", "text": POLARITY_REVERSAL_SYSTEM, "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {
                    "role": "user",
                    "content": polarity_reversal_user_message(r.query, r.instruction, r.positive, r.negative),
                }
            ],
            "output_config": {"format": {"type": "json_schema", "schema": OUTPUT_SCHEMA}},
        }

    # -- hooks: a subclass (the label-swap judge) changes what is asked and how the answer is read -----------
    def _key(self, r) -> str:
        return synthesis_cache_key(self.model, r)

    def _new_result(self, r, key: str):
        return InversionResult(pair_id=r.pair_id, model=self.model, cache_key=key)

    def _parse(self, message, res):
        return parse_response(message, res)

    def _prompt_chars(self, r) -> int:
        return (
            len(POLARITY_REVERSAL_SYSTEM) + len(r.query) + len(r.instruction or "") + len(r.positive) + len(r.negative)
        )

    def _worst_case(self, r, batch: bool) -> float:
        est_in = self._prompt_chars(r) / 3.0
        return self.pricing.cost({"input_tokens": int(est_in) + 50, "output_tokens": self.max_tokens}, batch)

    def estimate_cost(self, r) -> float:
        """The cost cap's worst-case estimate of one call (what a skipped pair did not cost)."""
        return self._worst_case(r, batch=self.batch_mode)

    def _reserve(self, amount: float) -> bool:
        if self.max_cost_usd is not None and self.spent_usd + self._reserved + amount > self.max_cost_usd:
            return False
        self._reserved += amount
        return True

    def invert(self, requests: list[InversionRequest]) -> list[InversionResult]:
        if self.batch_mode:
            return self._run_batch(requests)
        return asyncio.run(self._run_async(requests))

    # -- Messages API, concurrent -------------------------------------------------------------------------
    async def _run_async(self, requests: list) -> list:
        import anthropic

        client = anthropic.AsyncAnthropic(**self._client_kwargs)
        sem = asyncio.Semaphore(self.max_concurrency)
        results: list = [None] * len(requests)
        capped = 0
        done = 0
        t0 = time.perf_counter()

        async def one(i: int, r) -> None:
            nonlocal capped, done
            key = self._key(r)
            res = self._new_result(r, key)
            async with sem:
                reserve = self._worst_case(r, batch=False)
                if not self._reserve(reserve):
                    res.failure_reason = "cost_cap_reached"
                    capped += 1
                    results[i] = res
                    return
                try:
                    self.requests_sent += 1
                    message = await client.messages.create(**self._params(r))
                    self._parse(message, res)
                except anthropic.APIStatusError as exc:
                    res.failure_reason = (
                        "transport_error"
                        if exc.status_code >= 429 or exc.status_code == 408
                        else f"api_error_{exc.status_code}"
                    )
                    res.rationale = _redact(str(exc))[:300]
                except anthropic.APIError as exc:
                    res.failure_reason = "transport_error"
                    res.rationale = _redact(str(exc))[:300]
                finally:
                    self._reserved -= reserve
                res.cost_usd = self.pricing.cost(res.usage)
                self.spent_usd += res.cost_usd
                self.cache.put(key, res)
                results[i] = res
                done += 1
                if done % 50 == 0:
                    self.log(
                        f"anthropic: {done}/{len(requests)} calls, ${self.spent_usd:.4f}, "
                        f"{done / (time.perf_counter() - t0):.1f} req/s"
                    )

        await asyncio.gather(*(one(i, r) for i, r in enumerate(requests)))
        await client.close()
        raise_if_unavailable([r for r in results if r is not None], self.name)
        if capped:
            raise BudgetExceededError(
                f"max_cost_usd={self.max_cost_usd} reached: spent ${self.spent_usd:.4f}, {capped} calls not sent. "
                "Answers received so far are cached; raise the cap and rerun to continue."
            )
        return [r for r in results if r is not None]

    # -- Message Batches ------------------------------------------------------------------------------------
    def _run_batch(self, requests: list[InversionRequest]) -> list[InversionResult]:
        import anthropic

        client = anthropic.Anthropic(**self._client_kwargs)
        by_key = {synthesis_cache_key(self.model, r): r for r in requests}
        pending = set(by_key)
        out: dict[str, InversionResult] = {}
        # Resume batches submitted before a crash that cover keys we still need.
        for batch_id, keys in self.cache.open_batches():
            if pending & set(keys):
                self.log(f"anthropic: resuming Message Batch {batch_id}")
                self._collect(client, batch_id, by_key, out)
                pending -= set(out)
        if pending:
            todo = [k for k in by_key if k in pending]
            total = sum(self._worst_case(by_key[k], batch=True) for k in todo)
            if not self._reserve(total):
                raise BudgetExceededError(
                    f"max_cost_usd={self.max_cost_usd}: a batch of {len(todo)} requests could cost up to "
                    f"${total:.4f}; not submitted"
                )
            batch = client.messages.batches.create(
                requests=[{"custom_id": k, "params": self._params(by_key[k])} for k in todo]
            )
            self.requests_sent += len(todo)
            self.cache.record_batch(batch.id, todo, "submitted")
            self.log(f"anthropic: submitted Message Batch {batch.id} with {len(todo)} requests")
            self._collect(client, batch.id, by_key, out)
            self._reserved -= total
        return [
            out[k]
            if k in out
            else self.cache.get(k) or InversionResult(pair_id=by_key[k].pair_id, failure_reason="batch_missing")
            for k in by_key
        ]

    def _collect(
        self, client, batch_id: str, by_key: dict[str, InversionRequest], out: dict[str, InversionResult]
    ) -> None:
        while True:
            batch = client.messages.batches.retrieve(batch_id)
            if batch.processing_status == "ended":
                break
            self.log(f"anthropic: batch {batch_id} {batch.processing_status}: {batch.request_counts}")
            time.sleep(self.poll_interval_s)
        for item in client.messages.batches.results(batch_id):
            req = by_key.get(item.custom_id)
            if req is None:
                continue
            res = InversionResult(pair_id=req.pair_id, model=self.model, cache_key=item.custom_id)
            kind = item.result.type
            if kind == "succeeded":
                parse_response(item.result.message, res)
                res.cost_usd = self.pricing.cost(res.usage, batch=True)
                self.spent_usd += res.cost_usd
            else:
                res.failure_reason = {"expired": "batch_expired", "canceled": "batch_canceled"}.get(
                    kind, "batch_errored"
                )
            self.cache.put(item.custom_id, res)
            out[item.custom_id] = res
        self.cache.record_batch(batch_id, list(by_key), "collected")
