"""The optional local backend: a causal LM loaded from a folder through transformers (a tiny random one here)."""

from ifir_pipeline.synthesis.base import InversionRequest
from ifir_pipeline.synthesis.local_backend import LocalLMBackend


def test_local_backend_generates_and_records_unusable_output_as_failed_rows(tmp_path):
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    from ifir_pipeline.encoders import packaged_model_path

    tok = AutoTokenizer.from_pretrained(packaged_model_path())
    tok.save_pretrained(tmp_path)
    GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_layer=1, n_embd=32, n_head=2, n_positions=2048)).save_pretrained(
        tmp_path
    )
    backend = LocalLMBackend(str(tmp_path), max_new_tokens=6)
    [res] = backend.invert([InversionRequest("p#0", "heat transfer", None, "doc about slabs", "doc about wings")])
    assert res.model == str(tmp_path) and res.cache_key
    assert res.status == "failed" and res.failure_reason == "invalid_json"  # a random model writes no JSON
    assert res.usage["input_tokens"] > 0 and res.usage["output_tokens"] > 0
