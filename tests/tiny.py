"""The tiny random LLaMA the unit tests train, judge and generate with (one builder, many fixtures).

Two layers, hidden size 32, the embedded SmolLM2's tokenizer, so chat templates and
tokenisation are the real ones while a forward pass costs microseconds.
"""

from __future__ import annotations

from pathlib import Path


def smollm2_tokenizer():
    from transformers import AutoTokenizer

    from heedful.models.registry import smollm2_path
    gguf = smollm2_path()
    return AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)


def tiny_llama(tok, *, max_positions: int = 256, init_range: float | None = None):
    """A seeded random `LlamaForCausalLM` for `tok`; `init_range` widens the weights (peakier logits)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(0)
    extra = {} if init_range is None else {"initializer_range": init_range}
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=max_positions,
                      tie_word_embeddings=True, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
                      **extra)
    return LlamaForCausalLM(cfg)


def save_tiny_llama(out: Path, tok, **kw) -> Path:
    tiny_llama(tok, **kw).save_pretrained(out)
    tok.save_pretrained(out)
    return out
