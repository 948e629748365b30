"""Fixtures for model tests: a tiny random LLaMA with the real SmolLM2 tokenizer, built once per session.

The tokenizer comes from the shipped GGUF (~8 s) and is saved with the tiny
model as a normal HF folder, so loading it afterwards takes well under a
second (NOTES-models.md item 7). The weights are initialised with a large
spread so that the random model's next-token distribution is peaked: greedy
choices then do not hinge on float rounding, and batched-vs-single
comparisons test the padding logic rather than luck.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from heedful.models.registry import smollm2_path
    gguf = smollm2_path()
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      tie_word_embeddings=True, initializer_range=0.5, bos_token_id=tok.bos_token_id,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model = LlamaForCausalLM(cfg)
    out = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny(tiny_model_dir):
    """The tiny model loaded once behind the Model protocol (tests must not mutate it)."""
    from heedful.models.hf import HFModel
    return HFModel.load(tiny_model_dir, name="tiny", batch_size=8)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    """Each test gets its own heedful cache folder, never ~/.cache."""
    monkeypatch.setenv("HEEDFUL_CACHE", str(tmp_path / "cache"))
