"""Optional: a causal LM from a local folder through transformers, for users without an API key.

Same prompt and output schema as the anthropic backend; the model's text is parsed the same way, so
malformed output becomes a failed row with a reason.
"""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

from ifir_pipeline.synthesis.anthropic_backend import parse_response
from ifir_pipeline.synthesis.base import InversionRequest, InversionResult
from ifir_pipeline.synthesis.cache import synthesis_cache_key
from ifir_pipeline.synthesis.prompt import OUTPUT_SCHEMA, POLARITY_REVERSAL_SYSTEM, polarity_reversal_user_message

_JSON_OBJECT = re.compile(r"\{.*\}", re.S)


class LocalLMBackend:
    name = "local"

    def __init__(self, model_path: str, max_new_tokens: int = 400) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model = model_path
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.lm = AutoModelForCausalLM.from_pretrained(model_path)
        self.max_new_tokens = max_new_tokens

    def _prompt(self, r: InversionRequest) -> str:
        user = polarity_reversal_user_message(r.query, r.instruction, r.positive, r.negative)
        schema = json.dumps(OUTPUT_SCHEMA)
        messages = [
            {"role": "system", "content": POLARITY_REVERSAL_SYSTEM + "\nJSON schema: " + schema},
            {"role": "user", "content": user},
        ]
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return "\n\n".join(m["content"] for m in messages) + "\n\nJSON:"

    def invert(self, requests: list[InversionRequest]) -> list[InversionResult]:
        out = []
        for r in requests:
            res = InversionResult(pair_id=r.pair_id, model=self.model, cache_key=synthesis_cache_key(self.model, r))
            inputs = self.tokenizer(self._prompt(r), return_tensors="pt")
            gen = self.lm.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
            text = self.tokenizer.decode(gen[0][inputs["input_ids"].shape[1] :], skip_special_tokens=True)
            match = _JSON_OBJECT.search(text)
            message = SimpleNamespace(
                stop_reason="end_turn",
                usage=SimpleNamespace(
                    input_tokens=int(inputs["input_ids"].shape[1]),
                    output_tokens=int(gen.shape[1] - inputs["input_ids"].shape[1]),
                ),
                content=[SimpleNamespace(type="text", text=match.group(0) if match else text)],
            )
            out.append(parse_response(message, res))
        return out
