"""A tiny random LLaMA with the SmolLM2 tokenizer (built once per session) for fast recipe runs."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A randomly initialised 2-layer LLaMA (~1.6M parameters) saved with the SmolLM2 tokenizer."""
    from tests.tiny import save_tiny_llama, smollm2_tokenizer
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"), smollm2_tokenizer())


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    """Each test gets its own heedful cache (dense copies, reference log-probs), never ~/.cache."""
    monkeypatch.setenv("HEEDFUL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TQDM_DISABLE", "1")
