"""Integration: the shipped SmolLM2 through the transformers backend (slow: loads the real model).

Prompts are few and short so the whole file stays around a minute on 2 cores.
"""

from __future__ import annotations

import time

import pytest

from heedful.models import GenParams

pytestmark = pytest.mark.slow

PROMPTS = ["What is the capital of France?", "Name three colours.", "What is 2 + 2?",
           "Write one sentence about the sea."]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def smollm2(cache_dir):
    """Loaded through a fresh cache folder, so the GGUF → dense copy path runs too."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HEEDFUL_CACHE", str(cache_dir))
        from heedful.models import get_model
        return get_model("smollm2", batch_size=8)


def test_dense_copy_loads_fast(smollm2, cache_dir, monkeypatch):
    from heedful.models.hf import HFModel, cache_root
    from heedful.models.registry import smollm2_path
    monkeypatch.setenv("HEEDFUL_CACHE", str(cache_dir))
    folders = list((cache_root() / "dense").iterdir())
    assert len(folders) == 1 and (folders[0] / "model.safetensors").exists()
    assert getattr(smollm2.model, "hf_quantizer", None) is None  # trap 1 fixed before saving
    t0 = time.perf_counter()
    again = HFModel.load(smollm2_path(), name="smollm2")
    assert time.perf_counter() - t0 < 10  # ~1 s on an idle machine (vs ~20 s from the GGUF)
    assert again.revision == smollm2.revision and again.revision.startswith("gguf-sha256:")


def test_paris_and_batched_equals_single(smollm2):
    p = GenParams(max_new_tokens=24)
    batched = smollm2.generate(PROMPTS, p)
    assert "Paris" in batched[0][0].text
    single = [smollm2.generate([q], p)[0][0].text for q in PROMPTS]
    assert [cs[0].text for cs in batched] == single


def test_logprobs_consistent(smollm2):
    prompt = PROMPTS[0]
    c = smollm2.generate([prompt], GenParams(max_new_tokens=24))[0][0]
    right, wrong = smollm2.logprobs([prompt, prompt], [c.text, c.text.replace("Paris", "Berlin")])
    assert right == pytest.approx(c.logprob, abs=0.05)  # scored afterwards = reported while generating
    assert right > wrong + 2  # the model prefers its own, true answer clearly
    alone = smollm2.logprobs([prompt], [c.text])[0]
    assert alone == pytest.approx(right, abs=1e-3)


def test_seeded_samples_reproducible(smollm2):
    p = GenParams(n=2, temperature=0.8, top_p=0.95, max_new_tokens=12, seed=4)
    a = smollm2.generate(PROMPTS[:2], p)
    b = smollm2.generate(PROMPTS[1:2], p)
    assert [c.text for c in a[1]] == [c.text for c in b[0]]
