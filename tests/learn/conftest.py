"""Fixtures for training tests: a tiny random LLaMA with the real SmolLM2 tokenizer, tiny datasets.

The tokenizer comes from the shipped GGUF once per session (~8 s) and is saved
with the tiny model as a normal HF folder, so each test loads it in well under
a second. Sequences stay short (<= 64 tokens): with a 49k vocabulary the
logits dominate a step's cost (NOTES-models.md, trap 7).
"""

from __future__ import annotations

import pytest

PAIRS = [
    ("What is 2+2?", "2+2 is 4.", "It is 5, I think."),
    ("Name a colour.", "Blue is a colour.", "Dogs bark loudly."),
    ("Say hello.", "Hello!", "Go away."),
    ("Capital of France?", "Paris.", "London, obviously."),
    ("Is ice cold?", "Yes, ice is cold.", "No, ice is very hot."),
    ("Spell cat.", "C-A-T.", "D-O-G."),
    ("What is 3*3?", "3*3 is 9.", "3*3 is 33."),
    ("Opposite of up?", "Down.", "Sideways, maybe."),
]


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory):
    from transformers import AutoTokenizer

    from heedful.learn.train.loading import embedded_gguf
    gguf = embedded_gguf("smollm2")
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    out = tmp_path_factory.mktemp("tokenizer")
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_model_dir(tokenizer_dir, tmp_path_factory):
    """A randomly initialised 2-layer LLaMA (~1.6M parameters) saved with the SmolLM2 tokenizer."""
    from transformers import AutoTokenizer

    from tests.tiny import save_tiny_llama
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"), AutoTokenizer.from_pretrained(str(tokenizer_dir)))


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    """Each test gets its own heedful cache (reference log-probs), never ~/.cache."""
    monkeypatch.setenv("HEEDFUL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TQDM_DISABLE", "1")


def _save(rows: dict, path):
    import datasets
    datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows)}).save_to_disk(str(path))
    return path


@pytest.fixture
def pref_dir(tmp_path):
    return _save({"prompt": [p for p, _, _ in PAIRS], "chosen": [" " + c for _, c, _ in PAIRS],
                  "rejected": [" " + r for _, _, r in PAIRS]}, tmp_path / "pairs")


@pytest.fixture
def kto_dir(tmp_path):
    rows = {"prompt": [], "completion": [], "label": []}
    for p, c, r in PAIRS:
        rows["prompt"] += [p, p]
        rows["completion"] += [" " + c, " " + r]
        rows["label"] += [True, False]
    return _save(rows, tmp_path / "kto")


@pytest.fixture
def sft_dir(tmp_path):
    return _save({"messages": [[{"role": "user", "content": p}, {"role": "assistant", "content": c}]
                               for p, c, _ in PAIRS]}, tmp_path / "sft")


@pytest.fixture
def grpo_dir(tmp_path):
    return _save({"prompt": [p for p, _, _ in PAIRS[:4]], "expected": ["4", "blue", "hello", "paris"]},
                 tmp_path / "prompts")
