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
    from tests.tiny import save_tiny_llama, smollm2_tokenizer
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"), smollm2_tokenizer(),
                           max_positions=512, init_range=0.5)


@pytest.fixture(scope="session")
def tiny(tiny_model_dir):
    """The tiny model loaded once behind the Model protocol (tests must not mutate it)."""
    from heedful.models.hf import HFModel
    return HFModel.load(tiny_model_dir, name="tiny", batch_size=8)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    """Each test gets its own heedful cache folder, never ~/.cache."""
    monkeypatch.setenv("HEEDFUL_CACHE", str(tmp_path / "cache"))
